import CareHubCore
import CareHubCrypto
import Foundation
import GRDB

/// ``APITokenStore`` on the hub's SQLite database: one row per token in `api_tokens`, each change
/// committed with its audit events on the same chain as every other.
public struct SQLiteAPITokenStore: APITokenStore {
    private let database: CareHubDatabase
    private let audit: SQLiteAuditLog?

    /// Creates the store; changes append their audit events to `audit`'s chain in the same
    /// transaction (without it, changes are refused).
    public init(database: CareHubDatabase, audit: SQLiteAuditLog? = nil) {
        self.database = database
        self.audit = audit
    }

    public func create(_ token: APIToken, digest: [UInt8], recording events: [AuditEvent]) async throws {
        guard let audit else { throw StorageError.auditKeyMissing }
        try await database.pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO api_tokens (id, org, integration, scopes, allow_from, digest, created_by, created_at, expires_at, state)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    token.id.rawValue, token.org.rawValue, token.integration, token.scopes.map(\.rawValue).joined(separator: ","),
                    token.allowFrom.map(\.description).joined(separator: ","), Data(digest), token.createdBy,
                    token.createdAt.timeIntervalSince1970, token.expiresAt.timeIntervalSince1970, token.state.rawValue,
                ])
            try audit.append(events, within: db)
        }
    }

    public func token(_ id: APITokenID, digest: [UInt8]) async throws -> APIToken? {
        try await database.pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM api_tokens WHERE id = ?", arguments: [id.rawValue]),
                  constantTimeEquals(Array(row["digest"] as Data), digest) else { return nil }
            return Self.token(row)
        }
    }

    public func token(_ id: APITokenID) async throws -> APIToken? {
        try await database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM api_tokens WHERE id = ?", arguments: [id.rawValue]).map(Self.token)
        }
    }

    public func list(org: OrgID) async throws -> [APIToken] {
        try await database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM api_tokens WHERE org = ? ORDER BY created_at DESC, rowid DESC", arguments: [org.rawValue])
                .map(Self.token)
        }
    }

    public func decide(_ id: APITokenID, state: APITokenState, by: String, at: Date, recording events: [AuditEvent]) async throws -> APIToken? {
        guard let audit else { throw StorageError.auditKeyMissing }
        return try await database.pool.write { db in
            try db.execute(
                sql: "UPDATE api_tokens SET state = ?, decided_by = ?, decided_at = ? WHERE id = ? AND state != 'revoked'",
                arguments: [state.rawValue, by, at.timeIntervalSince1970, id.rawValue])
            if db.changesCount == 1 { try audit.append(events, within: db) }
            return try Row.fetchOne(db, sql: "SELECT * FROM api_tokens WHERE id = ?", arguments: [id.rawValue]).map(Self.token)
        }
    }

    private static func token(_ row: Row) -> APIToken {
        let scopes: String = row["scopes"]
        let allow: String = row["allow_from"]
        let decidedAt: Double? = row["decided_at"]
        return APIToken(
            id: APITokenID(row["id"]), org: OrgID(row["org"]), integration: row["integration"],
            scopes: scopes.split(separator: ",").compactMap { APIScope(rawValue: String($0)) },
            allowFrom: allow.split(separator: ",").compactMap { CIDRBlock(String($0)) }, createdBy: row["created_by"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]), expiresAt: Date(timeIntervalSince1970: row["expires_at"]),
            state: APITokenState(rawValue: row["state"]) ?? .revoked, decidedBy: row["decided_by"],
            decidedAt: decidedAt.map(Date.init(timeIntervalSince1970:)))
    }
}
