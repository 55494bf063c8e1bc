import CareHubCore
import Foundation
import GRDB

/// Staff accounts in SQLite. Each login-state change is a single statement or transaction, so
/// concurrent logins cannot both consume one TOTP step or one recovery code.
public struct SQLiteUserDirectory: UserDirectory {
    private let database: CareHubDatabase

    private let audit: SQLiteAuditLog?

    /// Account changes append their audit events to `audit`'s chain, in their own transaction;
    /// without it (read-only use) a change that carries an event fails.
    public init(database: CareHubDatabase, audit: SQLiteAuditLog? = nil) {
        self.database = database
        self.audit = audit
    }

    public func user(org: OrgID, name: String) async throws -> StaffUser? {
        try await database.pool.read { db in try Self.fetch(org, name, db) }
    }

    public func recordFailure(org: OrgID, name: String, at: Date, lockAfter: Int, lockFor: TimeInterval) async throws -> LoginThrottle {
        try await database.pool.write { db in
            try db.execute(
                sql: """
                    UPDATE users SET failures = failures + 1, last_failure_at = ?,
                        locked_until = CASE WHEN failures + 1 >= ? THEN ? ELSE locked_until END
                    WHERE org = ? AND name = ?
                    """,
                arguments: [at.timeIntervalSince1970, lockAfter, at.timeIntervalSince1970 + lockFor, org.rawValue, name])
            return try Self.fetch(org, name, db)?.throttle ?? LoginThrottle()
        }
    }

    public func recordSuccess(org: OrgID, name: String) async throws {
        try await database.pool.write { db in
            try db.execute(
                sql: "UPDATE users SET failures = 0, last_failure_at = NULL, locked_until = NULL WHERE org = ? AND name = ?",
                arguments: [org.rawValue, name])
        }
    }

    public func setPendingSecret(org: OrgID, name: String, secret: SealedText) async throws {
        try await database.pool.write { db in
            try db.execute(
                sql: "UPDATE users SET totp_pending_key_id = ?, totp_pending = ? WHERE org = ? AND name = ?",
                arguments: [secret.keyID, Data(secret.bytes), org.rawValue, name])
        }
    }

    public func confirmEnrollment(org: OrgID, name: String, counter: UInt64, recoveryCodeDigests: [[UInt8]]) async throws {
        try await database.pool.write { db in
            try db.execute(
                sql: """
                    UPDATE users SET totp_key_id = totp_pending_key_id, totp_secret = totp_pending,
                        totp_pending_key_id = NULL, totp_pending = NULL, totp_last_counter = ?, recovery_codes = ?
                    WHERE org = ? AND name = ? AND totp_pending IS NOT NULL
                    """,
                arguments: [Int64(counter), Data(recoveryCodeDigests.joined()), org.rawValue, name])
        }
    }

    public func consumeCounter(org: OrgID, name: String, counter: UInt64) async throws -> Bool {
        try await database.pool.write { db in
            try db.execute(
                sql: "UPDATE users SET totp_last_counter = ? WHERE org = ? AND name = ? AND totp_last_counter < ?",
                arguments: [Int64(counter), org.rawValue, name, Int64(counter)])
            return db.changesCount == 1
        }
    }

    public func consumeRecoveryCode(org: OrgID, name: String, digest: [UInt8]) async throws -> Bool {
        try await database.pool.write { db in
            guard let user = try Self.fetch(org, name, db) else { return false }
            var digests = user.secondFactor.recoveryCodeDigests
            guard let index = digests.firstIndex(of: digest) else { return false }
            digests.remove(at: index)
            try db.execute(
                sql: "UPDATE users SET recovery_codes = ? WHERE org = ? AND name = ?",
                arguments: [Data(digests.joined()), org.rawValue, name])
            return true
        }
    }

    // MARK: Administration (command line and admin API)

    /// Adds an account, with its audit event when given; fails if the name is taken in the organisation.
    public func add(_ user: StaffUser, at: Date = Date(), audit event: AuditEvent? = nil) async throws {
        try await database.pool.write { [self] db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE org = ? AND name = ?", arguments: [user.org.rawValue, user.name]) == true {
                throw StorageError.userExists(org: user.org.rawValue, user: user.name)
            }
            try db.execute(
                sql: "INSERT INTO users (org, name, role, password_hash, disabled, created_at, display_name) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [user.org.rawValue, user.name, user.role.rawValue, user.passwordHash, user.disabled, at.timeIntervalSince1970, user.displayName])
            if let event { try appendAudit(event, db) }
        }
    }

    /// An organisation's accounts, by name.
    public func list(org: OrgID) async throws -> [StaffUser] {
        try await database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM users WHERE org = ? ORDER BY name", arguments: [org.rawValue]).map(Self.user)
        }
    }

    /// Changes an account's role and records who did it in the same transaction; returns the old role.
    @discardableResult
    public func setRole(org: OrgID, name: String, role: Role, audit: AuditEvent) async throws -> Role {
        try await change(org, name, audit: audit) { db, user in
            try db.execute(sql: "UPDATE users SET role = ? WHERE org = ? AND name = ?", arguments: [role.rawValue, org.rawValue, name])
            return user.role
        }
    }

    /// Disables or re-enables an account.
    public func setDisabled(org: OrgID, name: String, disabled: Bool, audit: AuditEvent) async throws {
        try await change(org, name, audit: audit) { db, _ in
            try db.execute(sql: "UPDATE users SET disabled = ? WHERE org = ? AND name = ?", arguments: [disabled, org.rawValue, name])
        }
    }

    /// Removes the account's second factor and recovery codes; it enrols again at its next login.
    public func resetSecondFactor(org: OrgID, name: String, audit: AuditEvent) async throws {
        try await change(org, name, audit: audit) { db, _ in
            try db.execute(
                sql: """
                    UPDATE users SET totp_key_id = NULL, totp_secret = NULL, totp_pending_key_id = NULL, totp_pending = NULL,
                        totp_last_counter = 0, recovery_codes = x'' WHERE org = ? AND name = ?
                    """,
                arguments: [org.rawValue, name])
        }
    }

    /// Sets or clears (nil) the name patients see on the account's replies, with its audit event
    /// (`user.display_name_changed`); returns the old one. Sessions already logged in keep the
    /// name they logged in with.
    @discardableResult
    public func setDisplayName(org: OrgID, name: String, displayName: String?, audit: AuditEvent) async throws -> String? {
        try await change(org, name, audit: audit) { db, user in
            try db.execute(sql: "UPDATE users SET display_name = ? WHERE org = ? AND name = ?", arguments: [displayName, org.rawValue, name])
            return user.displayName
        }
    }

    /// Lifts a lockout and clears the failure count.
    public func unlock(org: OrgID, name: String, audit: AuditEvent) async throws {
        try await change(org, name, audit: audit) { db, _ in
            try db.execute(
                sql: "UPDATE users SET failures = 0, last_failure_at = NULL, locked_until = NULL WHERE org = ? AND name = ?",
                arguments: [org.rawValue, name])
        }
    }

    private func change<T: Sendable>(
        _ org: OrgID, _ name: String, audit: AuditEvent, _ body: @escaping @Sendable (Database, StaffUser) throws -> T
    ) async throws -> T {
        try await database.pool.write { [self] db in
            guard let user = try Self.fetch(org, name, db) else { throw StorageError.userNotFound(org: org.rawValue, user: name) }
            let result = try body(db, user)
            try appendAudit(audit, db)
            return result
        }
    }

    private func appendAudit(_ event: AuditEvent, _ db: Database) throws {
        guard let audit else { throw StorageError.auditKeyMissing }
        try audit.append([event], within: db)
    }

    private static func fetch(_ org: OrgID, _ name: String, _ db: Database) throws -> StaffUser? {
        try Row.fetchOne(db, sql: "SELECT * FROM users WHERE org = ? AND name = ?", arguments: [org.rawValue, name]).map(user)
    }

    private static func sealed(_ row: Row, key: String, bytes: String) -> SealedText? {
        guard let keyID: String = row[key], let data: Data = row[bytes] else { return nil }
        return SealedText(keyID: keyID, bytes: Array(data))
    }

    private static func user(_ row: Row) -> StaffUser {
        let codes = Array(row["recovery_codes"] as Data? ?? Data())
        let digests = stride(from: 0, to: codes.count - codes.count % 32, by: 32).map { Array(codes[$0..<($0 + 32)]) }
        let lastFailure: Double? = row["last_failure_at"]
        let lockedUntil: Double? = row["locked_until"]
        return StaffUser(
            org: OrgID(row["org"]), name: row["name"], role: Role(rawValue: row["role"]) ?? .staff,
            passwordHash: row["password_hash"], disabled: row["disabled"],
            secondFactor: SecondFactor(
                secret: sealed(row, key: "totp_key_id", bytes: "totp_secret"),
                pendingSecret: sealed(row, key: "totp_pending_key_id", bytes: "totp_pending"),
                lastCounter: UInt64(row["totp_last_counter"] as Int64),
                recoveryCodeDigests: digests),
            throttle: LoginThrottle(
                failures: row["failures"],
                lastFailureAt: lastFailure.map(Date.init(timeIntervalSince1970:)),
                lockedUntil: lockedUntil.map(Date.init(timeIntervalSince1970:))),
            displayName: row["display_name"])
    }
}
