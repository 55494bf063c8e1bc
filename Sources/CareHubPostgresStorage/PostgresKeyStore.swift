import CareHubCore
import CareHubPostgres
import Foundation

/// Wrapped keys in PostgreSQL: organisations' key-encryption keys (wrapped under the master key)
/// and data keys (wrapped under a KEK version). No key is ever stored unwrapped.
///
/// Several nodes share the keys, so every creation is a race that one of them wins: a new KEK
/// version or data key is inserted with `ON CONFLICT DO NOTHING`, and the loser reads back the
/// winner's row (its insert waits for the winner's transaction, so the row it then reads has
/// committed). Both nodes end up with the same key; the loser's wrapped bytes are dropped.
public struct PostgresKeyStore: KeyStore {
    public typealias KEKRecord = CareHubCore.KEKRecord
    public typealias DataKeyRecord = CareHubCore.DataKeyRecord

    private let database: PostgresDatabase

    public init(database: PostgresDatabase) { self.database = database }

    /// All KEK versions of an organisation, oldest first.
    public func keks(org: OrgID) async throws -> [KEKRecord] {
        try await database.client.query("SELECT * FROM org_keks WHERE org = $1 ORDER BY version", [.text(org.rawValue)]).map(Self.kek)
    }

    /// The active KEK, creating version 1 with `makeWrapped` if the organisation has none.
    /// - Throws: ``PostgresStorageError/keysChanged(org:)`` when version 1 exists but no version
    ///   is live (not a state the hub makes).
    public func activeKEK(org: OrgID, makeWrapped: @escaping @Sendable (Int) throws -> [UInt8]) async throws -> KEKRecord {
        try await database.client.transaction { tx in
            let live = "SELECT * FROM org_keks WHERE org = $1 AND state IN ('active', 'rotating') ORDER BY version DESC LIMIT 1"
            if let row = try tx.query(live, [.text(org.rawValue)]).first { return try Self.kek(row) }
            let wrapped = try makeWrapped(1)
            let inserted = try tx.execute(
                "INSERT INTO org_keks (org, version, state, wrapped, created_at) VALUES ($1, 1, 'active', $2, $3) ON CONFLICT (org, version) DO NOTHING",
                [.text(org.rawValue), .bytea(wrapped), .double(Date().timeIntervalSince1970)])
            if inserted == 1 { return KEKRecord(org: org, version: 1, state: .active, wrapped: wrapped) }
            // Another node made version 1 first: its row has committed, and this statement sees it.
            guard let row = try tx.query(live, [.text(org.rawValue)]).first else { throw PostgresStorageError.keysChanged(org: org.rawValue) }
            return try Self.kek(row)
        }
    }

    /// A KEK version, if it still exists.
    public func kek(org: OrgID, version: Int) async throws -> KEKRecord? {
        try await database.client.query(
            "SELECT * FROM org_keks WHERE org = $1 AND version = $2", [.text(org.rawValue), .int(Int64(version))]
        ).first.map(Self.kek)
    }

    /// A scope's data key, if it has one.
    public func dataKey(scope: String) async throws -> DataKeyRecord? {
        try await database.client.query("SELECT * FROM data_keys WHERE scope = $1", [.text(scope)]).first.map(Self.dataKey)
    }

    /// Stores a new data key unless the scope got one meanwhile; returns the one in force.
    public func insertDataKey(_ record: DataKeyRecord) async throws -> DataKeyRecord {
        try await database.client.transaction { tx in
            try tx.execute(
                "INSERT INTO data_keys (scope, org, kek_version, wrapped, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope) DO NOTHING",
                [.text(record.scope), .text(record.org.rawValue), .int(Int64(record.kekVersion)), .bytea(record.wrapped),
                 .double(Date().timeIntervalSince1970)])
            return try tx.query("SELECT * FROM data_keys WHERE scope = $1", [.text(record.scope)]).first.map(Self.dataKey) ?? record
        }
    }

    /// Deletes a scope's data key (crypto-shredding). Returns whether there was one.
    @discardableResult
    public func deleteDataKey(scope: String) async throws -> Bool {
        try await database.client.execute("DELETE FROM data_keys WHERE scope = $1", [.text(scope)]) > 0
    }

    // MARK: Rotation

    /// Starts a rotation (a new `rotating` version wrapped by `makeWrapped`), or returns the one
    /// an interrupted run left behind, or the one another node started at the same moment.
    /// - Throws: ``PostgresStorageError/keysChanged(org:)`` when the version it would create was
    ///   taken twice by keys that are not rotating (other nodes rotated meanwhile).
    public func beginRotation(org: OrgID, makeWrapped: @escaping @Sendable (Int) throws -> [UInt8]) async throws -> (from: [Int], to: KEKRecord) {
        let (from, to) = try await database.client.transaction { tx -> ([Int], KEKRecord) in
            // A second pass only after losing the race for the version number: it finds the
            // winner's rotating version and resumes it.
            for _ in 0..<2 {
                let all = try tx.query("SELECT * FROM org_keks WHERE org = $1 ORDER BY version", [.text(org.rawValue)]).map(Self.kek)
                let live = all.filter { $0.state != .retired }.map(\.version)
                if let rotating = all.last(where: { $0.state == .rotating }) {
                    return (live.filter { $0 != rotating.version }, rotating)
                }
                let version = (all.last?.version ?? 0) + 1
                let wrapped = try makeWrapped(version)
                let inserted = try tx.execute(
                    """
                    INSERT INTO org_keks (org, version, state, wrapped, created_at) VALUES ($1, $2, 'rotating', $3, $4)
                    ON CONFLICT (org, version) DO NOTHING
                    """,
                    [.text(org.rawValue), .int(Int64(version)), .bytea(wrapped), .double(Date().timeIntervalSince1970)])
                if inserted == 1 { return (live, KEKRecord(org: org, version: version, state: .rotating, wrapped: wrapped)) }
            }
            throw PostgresStorageError.keysChanged(org: org.rawValue)
        }
        return (from, to)
    }

    /// Up to `limit` data keys of the organisation not yet under `version`.
    public func dataKeys(org: OrgID, notUnder version: Int, limit: Int) async throws -> [DataKeyRecord] {
        try await database.client.query(
            "SELECT * FROM data_keys WHERE org = $1 AND kek_version <> $2 LIMIT $3",
            [.text(org.rawValue), .int(Int64(version)), PostgresConversationStore.limit(limit)]
        ).map(Self.dataKey)
    }

    /// Replaces one data key's wrapping, only if it is still the one that was read.
    public func rewrap(scope: String, from old: DataKeyRecord, to version: Int, wrapped: [UInt8]) async throws {
        try await database.client.execute(
            "UPDATE data_keys SET kek_version = $1, wrapped = $2 WHERE scope = $3 AND kek_version = $4 AND wrapped = $5",
            [.int(Int64(version)), .bytea(wrapped), .text(scope), .int(Int64(old.kekVersion)), .bytea(old.wrapped)])
    }

    /// Makes `version` the active KEK and retires (and erases) every older one that no data key uses.
    /// - Throws: ``PostgresStorageError/rotationIncomplete(org:remaining:)`` while data keys of
    ///   the organisation remain under another version; nothing changes then.
    public func finishRotation(org: OrgID, version: Int) async throws {
        try await database.client.transaction { tx in
            let remaining = try tx.query(
                "SELECT COUNT(*) AS n FROM data_keys WHERE org = $1 AND kek_version <> $2", [.text(org.rawValue), .int(Int64(version))]
            ).first?.int("n") ?? 0
            guard remaining == 0 else { throw PostgresStorageError.rotationIncomplete(org: org.rawValue, remaining: Int(remaining)) }
            try tx.execute(
                "UPDATE org_keks SET state = 'retired', wrapped = NULL, retired_at = $1 WHERE org = $2 AND version <> $3 AND state <> 'retired'",
                [.double(Date().timeIntervalSince1970), .text(org.rawValue), .int(Int64(version))])
            try tx.execute("UPDATE org_keks SET state = 'active' WHERE org = $1 AND version = $2", [.text(org.rawValue), .int(Int64(version))])
        }
    }

    private static func kek(_ row: PostgresRow) throws -> KEKRecord {
        KEKRecord(
            org: OrgID(try row.string("org")), version: Int(try row.int("version")),
            state: KEKRecord.State(rawValue: try row.string("state")) ?? .retired,
            wrapped: try row.isNull("wrapped") ? nil : try row.bytes("wrapped"))
    }

    private static func dataKey(_ row: PostgresRow) throws -> DataKeyRecord {
        DataKeyRecord(
            scope: try row.string("scope"), org: OrgID(try row.string("org")), kekVersion: Int(try row.int("kek_version")),
            wrapped: try row.bytes("wrapped"))
    }
}
