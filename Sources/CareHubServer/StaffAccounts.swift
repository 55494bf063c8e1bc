import CareHubCore
import CareHubStorage
import Foundation

/// Changes to staff accounts, one implementation for the admin API and `carehub user …`.
///
/// Each change is checked (the password policy; an admin may not disable or demote their own
/// account), committed together with its audit event, and, when it ends the account's sessions,
/// recorded in the ``ChangeJournal``: a hub ends them at once when the change is its own
/// (`revoke`), and hubs in other processes within a second of reading the journal.
public struct StaffAccounts: Sendable {
    /// Who makes a change, as the audit event names them.
    public struct Author: Sendable {
        /// The audit actor: an admin's login, or `cli:` and the operator's user name.
        public let actor: String
        /// Where the change came from: the admin's address, or `local`.
        public let address: String
        /// The account making the change, if it is one of the organisation's (refused on itself).
        public let account: String?

        public init(actor: String, address: String, account: String?) {
            self.actor = actor
            self.address = address
            self.account = account
        }
    }

    private let users: SQLiteUserDirectory
    private let credentials: ScryptCredentials
    private let journal: any ChangeJournal
    private let origin: String
    private let revoke: @Sendable (_ user: String, _ org: OrgID, _ reason: String) async -> Void

    /// `origin` names this process in the journal; `revoke` ends the account's live sessions in
    /// this process (a hub), and does nothing where there are none (the command line).
    public init(
        database: CareHubDatabase, audit: SQLiteAuditLog, credentials: ScryptCredentials, journal: any ChangeJournal, origin: String,
        revoke: @escaping @Sendable (_ user: String, _ org: OrgID, _ reason: String) async -> Void = { _, _, _ in }
    ) {
        users = SQLiteUserDirectory(database: database, audit: audit)
        self.credentials = credentials
        self.journal = journal
        self.origin = origin
        self.revoke = revoke
    }

    /// Adds an account (`user.created`). Throws ``PipelineError`` `invalid_field` for a password the
    /// policy refuses, and a ``StorageError`` if the name is taken.
    public func add(
        org: OrgID, name: String, role: Role, password: Password, displayName: String?, by author: Author
    ) async throws {
        if let problem = PasswordPolicy().problem(with: password.text, user: name, org: org.rawValue) {
            throw PipelineError(.invalidField, "password refused: \(problem)")
        }
        let hash = try await credentials.hash(password)
        let now = Date()
        try await users.add(
            StaffUser(org: org, name: name, role: role, passwordHash: hash, displayName: displayName), at: now,
            audit: event(org, name, "user.created", "role=\(role.rawValue)", by: author, at: now))
    }

    /// Disables (`user.disabled`, sessions end) or enables (`user.enabled`) an account.
    public func setDisabled(org: OrgID, name: String, disabled: Bool, by author: Author) async throws {
        try refuseSelf(name, author, disabled ? "disable" : "enable")
        let action = disabled ? "user.disabled" : "user.enabled"
        try await users.setDisabled(org: org, name: name, disabled: disabled, audit: event(org, name, action, by: author))
        if disabled { try await revoked(name, org: org, reason: "disabled") }
    }

    /// Changes an account's role (`user.role_changed old=… new=…`); its sessions end if the role
    /// changed. Returns the old role.
    @discardableResult
    public func setRole(org: OrgID, name: String, role: Role, by author: Author) async throws -> Role? {
        try refuseSelf(name, author, "change the role of")
        let old = try await users.user(org: org, name: name)?.role
        _ = try await users.setRole(
            org: org, name: name, role: role,
            audit: event(org, name, "user.role_changed", "old=\(old?.rawValue ?? "?") new=\(role.rawValue)", by: author))
        if old != role { try await revoked(name, org: org, reason: "role_changed") }
        return old
    }

    /// Sets or clears (nil) the name patients see (`user.display_name_changed`).
    public func setDisplayName(org: OrgID, name: String, displayName: String?, by author: Author) async throws {
        let detail = displayName.map { "new=\"\($0)\"" } ?? "cleared"
        _ = try await users.setDisplayName(
            org: org, name: name, displayName: displayName, audit: event(org, name, "user.display_name_changed", detail, by: author))
    }

    /// Removes the second factor and recovery codes (`user.2fa_reset`); the sessions end.
    public func resetSecondFactor(org: OrgID, name: String, by author: Author) async throws {
        try await users.resetSecondFactor(org: org, name: name, audit: event(org, name, "user.2fa_reset", by: author))
        try await revoked(name, org: org, reason: "2fa_reset")
    }

    /// Lifts a lockout (`user.unlocked`).
    public func unlock(org: OrgID, name: String, by author: Author) async throws {
        try await users.unlock(org: org, name: name, audit: event(org, name, "user.unlocked", by: author))
    }

    private func refuseSelf(_ name: String, _ author: Author, _ verb: String) throws {
        guard name != author.account else { throw PipelineError.forbidden("you cannot \(verb) your own account; ask another admin") }
    }

    private func event(_ org: OrgID, _ name: String, _ action: String, _ detail: String = "", by author: Author, at date: Date = Date()) -> AuditEvent {
        AuditEvent(at: date, org: org, actor: author.actor, address: author.address, action: action, target: name, detail: detail)
    }

    /// Ends the sessions here, then tells the other processes through the journal.
    private func revoked(_ name: String, org: OrgID, reason: String) async throws {
        await revoke(name, org, reason)
        try await journal.record(Change(org: org, kind: .sessionsRevoked(user: name, reason: reason), origin: origin), at: Date())
    }
}
