import CareHubCore
import CareHubPostgres
import Foundation

/// Staff accounts in PostgreSQL, shared by every node: `SQLiteUserDirectory`'s behaviour in
/// PostgreSQL's dialect.
///
/// Nodes log the same account in concurrently, so no login-state change reads a value in one
/// statement and writes it back in another without a row lock. A TOTP step is consumed by one
/// `UPDATE … WHERE totp_last_counter < $n`: a second node's update waits for the first's row
/// lock, then evaluates its condition again on the committed row and changes nothing. A recovery
/// code is removed from the row read `FOR UPDATE`, so a second node waits and then reads the codes
/// without it. Account changes lock the row the same way and commit with their audit event,
/// appended last (``PostgresAuditLog/append(_:in:)``).
public struct PostgresUserDirectory: UserDirectory {
    private let database: PostgresDatabase

    private let audit: PostgresAuditLog?

    /// Account changes append their audit events to `audit`'s chain, in their own transaction;
    /// without it (read-only use) a change that carries an event fails.
    public init(database: PostgresDatabase, audit: PostgresAuditLog? = nil) {
        self.database = database
        self.audit = audit
    }

    public func user(org: OrgID, name: String) async throws -> StaffUser? {
        try await database.client.query("SELECT * FROM users WHERE org = $1 AND name = $2", [.text(org.rawValue), .text(name)])
            .first.map(Self.user)
    }

    public func recordFailure(org: OrgID, name: String, at: Date, lockAfter: Int, lockFor: TimeInterval) async throws -> LoginThrottle {
        // One statement, read back with RETURNING: concurrent failures on any node all count.
        try await database.client.query(
            """
            UPDATE users SET failures = failures + 1, last_failure_at = $1,
                locked_until = CASE WHEN failures + 1 >= $2 THEN $3 ELSE locked_until END
            WHERE org = $4 AND name = $5 RETURNING *
            """,
            [.double(at.timeIntervalSince1970), .int(Int64(lockAfter)), .double(at.timeIntervalSince1970 + lockFor),
             .text(org.rawValue), .text(name)]
        ).first.map(Self.user)?.throttle ?? LoginThrottle()
    }

    public func recordSuccess(org: OrgID, name: String) async throws {
        try await database.client.execute(
            "UPDATE users SET failures = 0, last_failure_at = NULL, locked_until = NULL WHERE org = $1 AND name = $2",
            [.text(org.rawValue), .text(name)])
    }

    public func setPendingSecret(org: OrgID, name: String, secret: SealedText) async throws {
        try await database.client.execute(
            "UPDATE users SET totp_pending_key_id = $1, totp_pending = $2 WHERE org = $3 AND name = $4",
            [.text(secret.keyID), .bytea(secret.bytes), .text(org.rawValue), .text(name)])
    }

    public func confirmEnrollment(org: OrgID, name: String, counter: UInt64, recoveryCodeDigests: [[UInt8]]) async throws {
        try await database.client.execute(
            """
            UPDATE users SET totp_key_id = totp_pending_key_id, totp_secret = totp_pending,
                totp_pending_key_id = NULL, totp_pending = NULL, totp_last_counter = $1, recovery_codes = $2
            WHERE org = $3 AND name = $4 AND totp_pending IS NOT NULL
            """,
            [.int(Int64(counter)), .bytea(Array(recoveryCodeDigests.joined())), .text(org.rawValue), .text(name)])
    }

    public func consumeCounter(org: OrgID, name: String, counter: UInt64) async throws -> Bool {
        try await database.client.execute(
            "UPDATE users SET totp_last_counter = $1 WHERE org = $2 AND name = $3 AND totp_last_counter < $1",
            [.int(Int64(counter)), .text(org.rawValue), .text(name)]) == 1
    }

    public func consumeRecoveryCode(org: OrgID, name: String, digest: [UInt8]) async throws -> Bool {
        try await database.client.transaction { tx in
            // FOR UPDATE: a second node using the same code waits here, then reads it gone.
            guard let row = try tx.query("SELECT * FROM users WHERE org = $1 AND name = $2 FOR UPDATE", [.text(org.rawValue), .text(name)]).first
            else { return false }
            var digests = try Self.user(row).secondFactor.recoveryCodeDigests
            guard let index = digests.firstIndex(of: digest) else { return false }
            digests.remove(at: index)
            try tx.execute(
                "UPDATE users SET recovery_codes = $1 WHERE org = $2 AND name = $3",
                [.bytea(Array(digests.joined())), .text(org.rawValue), .text(name)])
            return true
        }
    }

    // MARK: Administration (command line and admin API)

    /// Adds an account, with its audit event when given; fails if the name is taken in the organisation.
    /// - Throws: ``PostgresStorageError/userExists(org:user:)`` when it is, even if another node
    ///   added it a moment before.
    public func add(_ user: StaffUser, at: Date = Date(), audit event: AuditEvent? = nil) async throws {
        try await database.client.transaction { [self] tx in
            // ON CONFLICT DO NOTHING rather than a check first: an insert racing another node's
            // waits for it and then adds nothing, instead of failing on the primary key.
            let inserted = try tx.execute(
                """
                INSERT INTO users (org, name, role, password_hash, disabled, created_at, display_name) VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (org, name) DO NOTHING
                """,
                [.text(user.org.rawValue), .text(user.name), .text(user.role.rawValue), .text(user.passwordHash), .bool(user.disabled),
                 .double(at.timeIntervalSince1970), user.displayName.map(PostgresValue.text) ?? .null])
            guard inserted == 1 else { throw PostgresStorageError.userExists(org: user.org.rawValue, user: user.name) }
            if let event { try appendAudit(event, tx) }
        }
    }

    /// An organisation's accounts, by name (byte order, as SQLite's).
    public func list(org: OrgID) async throws -> [StaffUser] {
        try await database.client.query("SELECT * FROM users WHERE org = $1 ORDER BY name", [.text(org.rawValue)]).map(Self.user)
    }

    /// Changes an account's role and records who did it in the same transaction; returns the old role.
    @discardableResult
    public func setRole(org: OrgID, name: String, role: Role, audit: AuditEvent) async throws -> Role {
        try await change(org, name, audit: audit) { tx, user in
            try tx.execute("UPDATE users SET role = $1 WHERE org = $2 AND name = $3", [.text(role.rawValue), .text(org.rawValue), .text(name)])
            return user.role
        }
    }

    /// Disables or re-enables an account.
    public func setDisabled(org: OrgID, name: String, disabled: Bool, audit: AuditEvent) async throws {
        try await change(org, name, audit: audit) { tx, _ in
            try tx.execute("UPDATE users SET disabled = $1 WHERE org = $2 AND name = $3", [.bool(disabled), .text(org.rawValue), .text(name)])
        }
    }

    /// Removes the account's second factor and recovery codes; it enrols again at its next login.
    public func resetSecondFactor(org: OrgID, name: String, audit: AuditEvent) async throws {
        try await change(org, name, audit: audit) { tx, _ in
            try tx.execute(
                """
                UPDATE users SET totp_key_id = NULL, totp_secret = NULL, totp_pending_key_id = NULL, totp_pending = NULL,
                    totp_last_counter = 0, recovery_codes = ''::bytea WHERE org = $1 AND name = $2
                """,
                [.text(org.rawValue), .text(name)])
        }
    }

    /// Sets or clears (nil) the name patients see on the account's replies, with its audit event
    /// (`user.display_name_changed`); returns the old one. Sessions already logged in keep the
    /// name they logged in with.
    @discardableResult
    public func setDisplayName(org: OrgID, name: String, displayName: String?, audit: AuditEvent) async throws -> String? {
        try await change(org, name, audit: audit) { tx, user in
            try tx.execute(
                "UPDATE users SET display_name = $1 WHERE org = $2 AND name = $3",
                [displayName.map(PostgresValue.text) ?? .null, .text(org.rawValue), .text(name)])
            return user.displayName
        }
    }

    /// Lifts a lockout and clears the failure count.
    public func unlock(org: OrgID, name: String, audit: AuditEvent) async throws {
        try await change(org, name, audit: audit) { tx, _ in
            try tx.execute(
                "UPDATE users SET failures = 0, last_failure_at = NULL, locked_until = NULL WHERE org = $1 AND name = $2",
                [.text(org.rawValue), .text(name)])
        }
    }

    /// Runs `body` on the account's row, locked `FOR UPDATE` (so the old value it returns is the
    /// one it replaced, whichever node changed it before), then appends `audit`, in one transaction.
    /// - Throws: ``PostgresStorageError/userNotFound(org:user:)`` for an unknown account (nothing
    ///   is audited then).
    private func change<T: Sendable>(
        _ org: OrgID, _ name: String, audit: AuditEvent, _ body: @escaping @Sendable (PostgresTransaction, StaffUser) throws -> T
    ) async throws -> T {
        try await database.client.transaction { [self] tx in
            guard let row = try tx.query("SELECT * FROM users WHERE org = $1 AND name = $2 FOR UPDATE", [.text(org.rawValue), .text(name)]).first
            else { throw PostgresStorageError.userNotFound(org: org.rawValue, user: name) }
            let result = try body(tx, try Self.user(row))
            try appendAudit(audit, tx)
            return result
        }
    }

    private func appendAudit(_ event: AuditEvent, _ tx: PostgresTransaction) throws {
        guard let audit else { throw PostgresStorageError.auditKeyMissing }
        try audit.append([event], in: tx)
    }

    private static func sealed(_ row: PostgresRow, key: String, bytes: String) throws -> SealedText? {
        guard !(try row.isNull(key)), !(try row.isNull(bytes)) else { return nil }
        return SealedText(keyID: try row.string(key), bytes: try row.bytes(bytes))
    }

    private static func date(_ row: PostgresRow, _ column: String) throws -> Date? {
        try row.isNull(column) ? nil : Date(timeIntervalSince1970: try row.double(column))
    }

    private static func user(_ row: PostgresRow) throws -> StaffUser {
        let codes = try row.bytes("recovery_codes")
        let digests = stride(from: 0, to: codes.count - codes.count % 32, by: 32).map { Array(codes[$0..<($0 + 32)]) }
        return StaffUser(
            org: OrgID(try row.string("org")), name: try row.string("name"), role: Role(rawValue: try row.string("role")) ?? .staff,
            passwordHash: try row.string("password_hash"), disabled: try row.bool("disabled"),
            secondFactor: SecondFactor(
                secret: try sealed(row, key: "totp_key_id", bytes: "totp_secret"),
                pendingSecret: try sealed(row, key: "totp_pending_key_id", bytes: "totp_pending"),
                lastCounter: UInt64(try row.int("totp_last_counter")),
                recoveryCodeDigests: digests),
            throttle: LoginThrottle(
                failures: Int(try row.int("failures")),
                lastFailureAt: try date(row, "last_failure_at"),
                lockedUntil: try date(row, "locked_until")),
            displayName: try PostgresConversationStore.optionalString(row, "display_name"))
    }
}
