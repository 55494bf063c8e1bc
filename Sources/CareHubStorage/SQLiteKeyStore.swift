import CareHubCore
import Foundation
import GRDB

/// Wrapped keys in SQLite: organisations' key-encryption keys (wrapped under the master key) and
/// data keys (wrapped under a KEK version). No key is ever stored unwrapped.
public struct SQLiteKeyStore: KeyStore {
    public typealias KEKRecord = CareHubCore.KEKRecord
    public typealias DataKeyRecord = CareHubCore.DataKeyRecord

    private let database: CareHubDatabase

    public init(database: CareHubDatabase) { self.database = database }

    /// All KEK versions of an organisation, oldest first.
    public func keks(org: OrgID) async throws -> [KEKRecord] {
        try await database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM org_keks WHERE org = ? ORDER BY version", arguments: [org.rawValue]).map(Self.kek)
        }
    }

    /// The active KEK, creating version 1 with `makeWrapped` if the organisation has none.
    public func activeKEK(org: OrgID, makeWrapped: @escaping @Sendable (Int) throws -> [UInt8]) async throws -> KEKRecord {
        try await database.pool.write { db in
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM org_keks WHERE org = ? AND state IN ('active', 'rotating') ORDER BY version DESC LIMIT 1", arguments: [org.rawValue]) {
                return Self.kek(row)
            }
            let wrapped = try makeWrapped(1)
            try db.execute(
                sql: "INSERT INTO org_keks (org, version, state, wrapped, created_at) VALUES (?, 1, 'active', ?, ?)",
                arguments: [org.rawValue, Data(wrapped), Date().timeIntervalSince1970])
            return KEKRecord(org: org, version: 1, state: .active, wrapped: wrapped)
        }
    }

    /// A KEK version, if it still exists.
    public func kek(org: OrgID, version: Int) async throws -> KEKRecord? {
        try await database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM org_keks WHERE org = ? AND version = ?", arguments: [org.rawValue, version]).map(Self.kek)
        }
    }

    /// A scope's data key, if it has one.
    public func dataKey(scope: String) async throws -> DataKeyRecord? {
        try await database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM data_keys WHERE scope = ?", arguments: [scope]).map(Self.dataKey)
        }
    }

    /// Stores a new data key unless the scope got one meanwhile; returns the one in force.
    public func insertDataKey(_ record: DataKeyRecord) async throws -> DataKeyRecord {
        try await database.pool.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO data_keys (scope, org, kek_version, wrapped, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [record.scope, record.org.rawValue, record.kekVersion, Data(record.wrapped), Date().timeIntervalSince1970])
            return try Row.fetchOne(db, sql: "SELECT * FROM data_keys WHERE scope = ?", arguments: [record.scope]).map(Self.dataKey) ?? record
        }
    }

    /// Deletes a scope's data key (crypto-shredding). Returns whether there was one.
    @discardableResult
    public func deleteDataKey(scope: String) async throws -> Bool {
        try await database.pool.write { db in
            try db.execute(sql: "DELETE FROM data_keys WHERE scope = ?", arguments: [scope])
            return db.changesCount > 0
        }
    }

    // MARK: Rotation

    /// Starts a rotation (a new `rotating` version wrapped by `makeWrapped`), or returns the one
    /// an interrupted run left behind.
    public func beginRotation(org: OrgID, makeWrapped: @escaping @Sendable (Int) throws -> [UInt8]) async throws -> (from: [Int], to: KEKRecord) {
        try await database.pool.write { db in
            let all = try Row.fetchAll(db, sql: "SELECT * FROM org_keks WHERE org = ? ORDER BY version", arguments: [org.rawValue]).map(Self.kek)
            let live = all.filter { $0.state != .retired }.map(\.version)
            if let rotating = all.last(where: { $0.state == .rotating }) {
                return (live.filter { $0 != rotating.version }, rotating)
            }
            let version = (all.last?.version ?? 0) + 1
            let wrapped = try makeWrapped(version)
            try db.execute(
                sql: "INSERT INTO org_keks (org, version, state, wrapped, created_at) VALUES (?, ?, 'rotating', ?, ?)",
                arguments: [org.rawValue, version, Data(wrapped), Date().timeIntervalSince1970])
            return (live, KEKRecord(org: org, version: version, state: .rotating, wrapped: wrapped))
        }
    }

    /// Up to `limit` data keys of the organisation not yet under `version`.
    public func dataKeys(org: OrgID, notUnder version: Int, limit: Int) async throws -> [DataKeyRecord] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM data_keys WHERE org = ? AND kek_version <> ? LIMIT ?",
                arguments: [org.rawValue, version, limit]).map(Self.dataKey)
        }
    }

    /// Replaces one data key's wrapping, only if it is still the one that was read.
    public func rewrap(scope: String, from old: DataKeyRecord, to version: Int, wrapped: [UInt8]) async throws {
        try await database.pool.write { db in
            try db.execute(
                sql: "UPDATE data_keys SET kek_version = ?, wrapped = ? WHERE scope = ? AND kek_version = ? AND wrapped = ?",
                arguments: [version, Data(wrapped), scope, old.kekVersion, Data(old.wrapped)])
        }
    }

    /// Makes `version` the active KEK and retires (and erases) every older one that no data key uses.
    public func finishRotation(org: OrgID, version: Int) async throws {
        try await database.pool.write { db in
            let remaining = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM data_keys WHERE org = ? AND kek_version <> ?", arguments: [org.rawValue, version]) ?? 0
            guard remaining == 0 else { throw StorageError.rotationIncomplete(org: org.rawValue, remaining: remaining) }
            try db.execute(
                sql: "UPDATE org_keks SET state = 'retired', wrapped = NULL, retired_at = ? WHERE org = ? AND version <> ? AND state <> 'retired'",
                arguments: [Date().timeIntervalSince1970, org.rawValue, version])
            try db.execute(sql: "UPDATE org_keks SET state = 'active' WHERE org = ? AND version = ?", arguments: [org.rawValue, version])
        }
    }

    private static func kek(_ row: Row) -> KEKRecord {
        KEKRecord(
            org: OrgID(row["org"]), version: row["version"], state: KEKRecord.State(rawValue: row["state"]) ?? .retired,
            wrapped: (row["wrapped"] as Data?).map(Array.init))
    }

    private static func dataKey(_ row: Row) -> DataKeyRecord {
        DataKeyRecord(scope: row["scope"], org: OrgID(row["org"]), kekVersion: row["kek_version"], wrapped: Array(row["wrapped"] as Data))
    }
}
