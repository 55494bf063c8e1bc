import CareHubCore
import CareHubCrypto
import CareHubPostgres
import Foundation

/// ``APITokenStore`` on PostgreSQL: one row per token in `api_tokens`, as `SQLiteAPITokenStore`
/// keeps them, each change committed with its audit events (appended last, on the shared chain).
///
/// A decision is one conditional `UPDATE` (`state <> 'revoked'`) read back in the same
/// transaction: a revocation on one node and an approval on another in the same moment leave the
/// token revoked, and only the decision that changed the row is audited.
public struct PostgresAPITokenStore: APITokenStore {
    private let database: PostgresDatabase
    private let audit: PostgresAuditLog?

    /// Creates the store; changes append their audit events to `audit`'s chain in the same
    /// transaction (without it, changes are refused).
    public init(database: PostgresDatabase, audit: PostgresAuditLog? = nil) {
        self.database = database
        self.audit = audit
    }

    public func create(_ token: APIToken, digest: [UInt8], recording events: [AuditEvent]) async throws {
        guard let audit else { throw PostgresStorageError.auditKeyMissing }
        try await database.client.transaction { tx in
            try tx.execute(
                """
                INSERT INTO api_tokens (id, org, integration, scopes, allow_from, digest, created_by, created_at, expires_at, state)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                """,
                [
                    .text(token.id.rawValue), .text(token.org.rawValue), .text(token.integration),
                    .text(token.scopes.map(\.rawValue).joined(separator: ",")), .text(token.allowFrom.map(\.description).joined(separator: ",")),
                    .bytea(digest), .text(token.createdBy), .double(token.createdAt.timeIntervalSince1970),
                    .double(token.expiresAt.timeIntervalSince1970), .text(token.state.rawValue),
                ])
            try audit.append(events, in: tx)
        }
    }

    public func token(_ id: APITokenID, digest: [UInt8]) async throws -> APIToken? {
        guard let row = try await database.client.query("SELECT * FROM api_tokens WHERE id = $1", [.text(id.rawValue)]).first,
              constantTimeEquals(try row.bytes("digest"), digest)
        else { return nil }
        return try Self.token(row)
    }

    public func token(_ id: APITokenID) async throws -> APIToken? {
        try await database.client.query("SELECT * FROM api_tokens WHERE id = $1", [.text(id.rawValue)]).first.map(Self.token)
    }

    public func list(org: OrgID) async throws -> [APIToken] {
        try await database.client.query(
            "SELECT * FROM api_tokens WHERE org = $1 ORDER BY created_at DESC, rowid DESC", [.text(org.rawValue)]
        ).map(Self.token)
    }

    public func decide(_ id: APITokenID, state: APITokenState, by: String, at: Date, recording events: [AuditEvent]) async throws -> APIToken? {
        guard let audit else { throw PostgresStorageError.auditKeyMissing }
        return try await database.client.transaction { tx in
            let changed = try tx.execute(
                "UPDATE api_tokens SET state = $1, decided_by = $2, decided_at = $3 WHERE id = $4 AND state <> 'revoked'",
                [.text(state.rawValue), .text(by), .double(at.timeIntervalSince1970), .text(id.rawValue)])
            if changed == 1 { try audit.append(events, in: tx) }
            return try tx.query("SELECT * FROM api_tokens WHERE id = $1", [.text(id.rawValue)]).first.map(Self.token)
        }
    }

    private static func token(_ row: PostgresRow) throws -> APIToken {
        let scopes = try row.string("scopes")
        let allow = try row.string("allow_from")
        return APIToken(
            id: APITokenID(try row.string("id")), org: OrgID(try row.string("org")), integration: try row.string("integration"),
            scopes: scopes.split(separator: ",").compactMap { APIScope(rawValue: String($0)) },
            allowFrom: allow.split(separator: ",").compactMap { CIDRBlock(String($0)) }, createdBy: try row.string("created_by"),
            createdAt: Date(timeIntervalSince1970: try row.double("created_at")),
            expiresAt: Date(timeIntervalSince1970: try row.double("expires_at")),
            state: APITokenState(rawValue: try row.string("state")) ?? .revoked,
            decidedBy: try PostgresConversationStore.optionalString(row, "decided_by"),
            decidedAt: try row.isNull("decided_at") ? nil : Date(timeIntervalSince1970: try row.double("decided_at")))
    }
}
