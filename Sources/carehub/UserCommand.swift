import ArgumentParser
import CareHubCore
import CareHubCrypto
import CareHubServer
import CareHubStorage
import CareHubTerminal
import Foundation

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Manage staff accounts.",
        subcommands: [Add.self, List.self, Disable.self, Enable.self, SetRole.self, SetDisplayName.self, Reset2FA.self, Unlock.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a staff account; the password is read from standard input (one line). Audited as user.created.",
            discussion: "Example: printf '%s\\n' 'a long passphrase' | carehub user add --org riverside-clinic --user nurse.joy --role staff --display-name 'Joy Rivera'")

        @Option(help: "The organisation id (must exist in --config).")
        var org: String

        @Option(help: "The login name (ASCII letters, digits, '.', '_', '-'; up to 64).")
        var user: String

        @Option(help: "staff or admin.")
        var role: Role = .staff

        @Option(help: "The name patients see on the account's replies (1-64 characters); without it they see the login name.")
        var displayName: String?

        @Option(help: "The data directory.")
        var data = "./data"

        @Option(help: "The pipeline configuration, to check that the organisation exists.")
        var config = "pipeline.conf"

        func validate() throws {
            guard StaffUser.isValidName(user) else { throw ValidationError("--user: expected 1-64 ASCII letters, digits, '.', '_' or '-'") }
            if let displayName, StaffUser.displayName(from: displayName) == nil {
                throw ValidationError("--display-name: expected 1-\(StaffUser.maxDisplayNameLength) characters")
            }
        }

        func run() async throws {
            let hubConfig = try await Output.failing { try ConfigLoader.load(path: config) }
            guard hubConfig.org(OrgID(org)) != nil else {
                Output.error("carehub: no organisation '\(org)' in \(config); known: \(hubConfig.orgs.map(\.settings.id.rawValue).joined(separator: ", "))")
                throw ExitCode(1)
            }
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                Output.error("carehub: expected the password on standard input")
                throw ExitCode(1)
            }
            if let problem = PasswordPolicy().problem(with: line, user: user, org: org) {
                Output.error("carehub: password refused: \(problem)")
                throw ExitCode(1)
            }
            try await Output.withDatabase(data) { database in
                let hash = try PasswordHasher().hash(line)
                let users = SQLiteUserDirectory(database: database, audit: try Operator.auditLog(database, dataDirectory: data))
                let now = Date()
                try await users.add(
                    StaffUser(org: OrgID(org), name: user, role: role, passwordHash: hash, displayName: displayName.flatMap(StaffUser.displayName(from:))), at: now,
                    audit: AuditEvent(at: now, org: OrgID(org), actor: Operator.actor, address: "local", action: "user.created", target: user, detail: "role=\(role.rawValue)"))
            }
            Output.line("added \(role.rawValue) '\(user)' to \(org)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an organisation's staff accounts.")

        @Option(help: "The organisation id.")
        var org: String

        @Option(help: "The data directory.")
        var data = "./data"

        func run() async throws {
            try await Output.withDatabase(data) { database in
                let users = try await SQLiteUserDirectory(database: database).list(org: OrgID(org))
                let now = Date()
                for user in users {
                    var flags: [String] = []
                    if user.disabled { flags.append("disabled") }
                    flags.append(user.secondFactor.isEnrolled ? "2fa" : "no-2fa")
                    if user.throttle.isLocked(at: now) { flags.append("locked") }
                    Output.line(([user.name, user.role.rawValue] + flags + (user.displayName.map { [TerminalText.field($0)] } ?? [])).joined(separator: "\t"))
                }
            }
        }
    }
}

/// The options every account-changing command shares, and the audit record of the change.
struct AccountOptions: ParsableArguments {
    @Option(help: "The organisation id.")
    var org: String

    @Option(help: "The login name.")
    var user: String

    @Option(help: "The data directory.")
    var data = "./data"

    /// Runs `change` on the user directory with an audit event naming the operator at the console
    /// (``Operator/actor``), committed with the change.
    func apply(_ action: String, detail: String = "", _ change: (SQLiteUserDirectory, AuditEvent) async throws -> Void) async throws {
        let event = Operator.event(org: org, action: action, target: user, detail: detail)
        try await Output.withDatabase(data) { database in
            try await change(SQLiteUserDirectory(database: database, audit: try Operator.auditLog(database, dataDirectory: data)), event)
        }
    }
}

extension UserCommand {
    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable an account: it can no longer log in, and a running hub ends its live sessions within seconds.")
        @OptionGroup var account: AccountOptions

        func run() async throws {
            try await account.apply("user.disabled") { try await $0.setDisabled(org: OrgID(account.org), name: account.user, disabled: true, audit: $1) }
            Output.line("disabled '\(account.user)' in \(account.org)")
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-enable a disabled account.")
        @OptionGroup var account: AccountOptions

        func run() async throws {
            try await account.apply("user.enabled") { try await $0.setDisabled(org: OrgID(account.org), name: account.user, disabled: false, audit: $1) }
            Output.line("enabled '\(account.user)' in \(account.org)")
        }
    }

    struct SetRole: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-role", abstract: "Change an account's role; the change is recorded in the audit log with the old and new role.")
        @OptionGroup var account: AccountOptions
        @Option(help: "staff or admin.")
        var role: Role

        func run() async throws {
            var old: Role?
            try await account.apply("user.role_changed") { users, event in
                let current = try await users.user(org: OrgID(account.org), name: account.user).map(\.role)
                let audited = AuditEvent(
                    at: event.at, org: event.org, actor: event.actor, address: event.address, action: event.action,
                    target: event.target, detail: "old=\(current?.rawValue ?? "?") new=\(role.rawValue)")
                old = try await users.setRole(org: OrgID(account.org), name: account.user, role: role, audit: audited)
            }
            Output.line("'\(account.user)' in \(account.org): role \(old?.rawValue ?? "?") -> \(role.rawValue)")
        }
    }

    struct SetDisplayName: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-display-name",
            abstract: "Set the name patients see on an account's replies. Audited as user.display_name_changed; takes effect at the account's next login.",
            discussion: """
                Example: carehub user set-display-name --org riverside-clinic --user nurse.joy --display-name 'Joy Rivera'
                --clear removes it: patients see the login name again.
                """)
        @OptionGroup var account: AccountOptions
        @Option(help: "The name patients see (1-64 characters, one line).")
        var displayName: String?
        @Flag(help: "Remove the display name.")
        var clear = false

        func validate() throws {
            guard clear != (displayName != nil) else {
                throw ValidationError("give either --display-name NAME or --clear")
            }
            if let displayName, StaffUser.displayName(from: displayName) == nil {
                throw ValidationError("--display-name: expected 1-\(StaffUser.maxDisplayNameLength) characters")
            }
        }

        func run() async throws {
            let name = displayName.map { StaffUser.displayName(from: $0) ?? $0 }
            try await account.apply("user.display_name_changed", detail: name.map { "new=\"\($0)\"" } ?? "cleared") {
                try await $0.setDisplayName(org: OrgID(account.org), name: account.user, displayName: name, audit: $1)
            }
            if let name {
                Output.line("'\(account.user)' in \(account.org) is shown to patients as \(TerminalText.field(name))")
            } else {
                Output.line("'\(account.user)' in \(account.org) is shown to patients by the login name")
            }
        }
    }

    struct Reset2FA: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-2fa", abstract: "Remove an account's second factor and recovery codes; it enrols again at its next login.")
        @OptionGroup var account: AccountOptions

        func run() async throws {
            try await account.apply("user.2fa_reset") { try await $0.resetSecondFactor(org: OrgID(account.org), name: account.user, audit: $1) }
            Output.line("reset the second factor of '\(account.user)' in \(account.org); it enrols at its next login")
        }
    }

    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift a lockout after failed logins.")
        @OptionGroup var account: AccountOptions

        func run() async throws {
            try await account.apply("user.unlocked") { try await $0.unlock(org: OrgID(account.org), name: account.user, audit: $1) }
            Output.line("unlocked '\(account.user)' in \(account.org)")
        }
    }
}

extension Role: ExpressibleByArgument {}
