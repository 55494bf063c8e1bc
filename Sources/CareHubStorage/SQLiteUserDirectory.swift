import CareHubCore
import Foundation
import GRDB

/// Staff accounts in the hub's SQLite database: the auth stage's ``UserDirectory`` and the CLI's account admin.
public struct SQLiteUserDirectory: UserDirectory {
    private let database: CareHubDatabase

    /// Creates the directory.
    public init(database: CareHubDatabase) { self.database = database }

    public func user(org: OrgID, name: String) async throws -> StaffUser? {
        try await database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE org = ? AND name = ?", arguments: [org.rawValue, name]).map(Self.user)
        }
    }

    /// Adds an account; throws ``StorageError/userExists(org:user:)`` if the name is taken.
    public func add(_ user: StaffUser, at: Date = Date()) throws {
        try database.pool.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE org = ? AND name = ?", arguments: [user.org.rawValue, user.name]) == true {
                throw StorageError.userExists(org: user.org.rawValue, user: user.name)
            }
            try db.execute(
                sql: "INSERT INTO users (org, name, role, password_hash, disabled, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [user.org.rawValue, user.name, user.role.rawValue, user.passwordHash, user.disabled, at.timeIntervalSince1970])
        }
    }

    /// Every account of `org`, by name.
    public func list(org: OrgID) throws -> [StaffUser] {
        try database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM users WHERE org = ? ORDER BY name", arguments: [org.rawValue]).map(Self.user)
        }
    }

    private static func user(_ row: Row) -> StaffUser {
        StaffUser(
            org: OrgID(row["org"]), name: row["name"], role: Role(rawValue: row["role"]) ?? .staff,
            passwordHash: row["password_hash"], disabled: row["disabled"])
    }
}
