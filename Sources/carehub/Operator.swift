import CareHubCore
import CareHubServer
import CareHubStorage
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Who runs a command that writes, and the audit log it records the change in.
enum Operator {
    /// The audit actor of command-line changes: `cli:` and the account name of the process's real
    /// user id, as the operating system knows it (`cli:root`, `cli:alice`). Never the environment
    /// (`$SUDO_USER`, `$USER`), which the caller can set to anything.
    static var actor: String {
        let uid = getuid()
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "cli:uid=\(uid)" }
        return "cli:\(String(cString: name))"
    }

    /// The audit log of `database` with the audit key derived from the master key of `dataDirectory`
    /// (or `$CAREHUB_MASTER_KEY`), so that the command's events join the keyed chain under a
    /// signed head, as the hub's do.
    static func auditLog(_ database: CareHubDatabase, dataDirectory: String) throws -> SQLiteAuditLog {
        SQLiteAuditLog(database: database, checkpointKey: try MasterKey.auditKey(from: try MasterKey.load(dataDirectory: dataDirectory)))
    }

    /// The author of this command's changes: the operator, from `local`.
    static var author: StaffAccounts.Author { StaffAccounts.Author(actor: actor, address: "local", account: nil) }

    /// This process's name in the change journal.
    static let origin = "cli"

    /// Runs `body` with the account changes of a running hub: the same checks, audit events and
    /// journal entries, so that a running hub ends the sessions a change revokes within a second.
    static func withAccounts<T>(_ database: CareHubDatabase, dataDirectory: String, _ body: (StaffAccounts) async throws -> T) async throws -> T {
        let credentials = try ScryptCredentials()
        defer { credentials.shutdown() }
        let accounts = StaffAccounts(
            database: database, audit: try auditLog(database, dataDirectory: dataDirectory), credentials: credentials,
            journal: SQLiteChangeJournal(database: database), origin: origin)
        return try await body(accounts)
    }

    /// An event of this command, from `local`, in the operator's name.
    static func event(org: String, action: String, target: String, detail: String = "") -> AuditEvent {
        AuditEvent(at: Date(), org: OrgID(org), actor: actor, address: "local", action: action, target: target, detail: detail)
    }
}
