import CareHubCore
import Foundation
import Synchronization

/// Integration tokens in memory, held to the SQLite store's contract (APITokenStoreContractTests):
/// a change and its audit events both or neither, revocation for good, a digest compared in
/// constant time.
public final class MemoryAPITokenStore: APITokenStore {
    private let rows = Mutex<[(token: APIToken, digest: [UInt8])]>([])
    private let audit: RecordingAuditLog

    /// Changes record their events in `audit` (a failing log refuses the change).
    public init(audit: RecordingAuditLog) { self.audit = audit }

    public func create(_ token: APIToken, digest: [UInt8], recording events: [AuditEvent]) async throws {
        try rows.withLock { rows in
            guard !rows.contains(where: { $0.token.id == token.id }) else { throw PipelineError(.conflict, "\(token.id) exists") }
            try audit.recordAll(events)
            rows.append((token, digest))
        }
    }

    public func token(_ id: APITokenID, digest: [UInt8]) async throws -> APIToken? {
        rows.withLock { rows in rows.first { $0.token.id == id && Self.same($0.digest, digest) }?.token }
    }

    public func token(_ id: APITokenID) async throws -> APIToken? {
        rows.withLock { rows in rows.first { $0.token.id == id }?.token }
    }

    public func list(org: OrgID) async throws -> [APIToken] {
        rows.withLock { rows in rows.filter { $0.token.org == org }.map(\.token).reversed() }
    }

    public func decide(_ id: APITokenID, state: APITokenState, by: String, at: Date, recording events: [AuditEvent]) async throws -> APIToken? {
        try rows.withLock { rows in
            guard let index = rows.firstIndex(where: { $0.token.id == id }) else { return nil }
            guard rows[index].token.state != .revoked else { return rows[index].token }
            try audit.recordAll(events)
            rows[index].token.state = state
            rows[index].token.decidedBy = by
            rows[index].token.decidedAt = at
            return rows[index].token
        }
    }

    /// Compares without stopping at the first difference, as the SQLite store does.
    private static func same(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return zip(lhs, rhs).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
