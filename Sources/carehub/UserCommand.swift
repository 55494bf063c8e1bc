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
            try await Output.withDatabase(data) { database in
                try await Operator.withAccounts(database, dataDirectory: data) { accounts in
                    try await accounts.add(
                        org: OrgID(org), name: user, role: role, password: Password(line),
                        displayName: displayName.flatMap(StaffUser.displayName(from:)), by: Operator.author)
                }
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

    /// Runs `change` through the hub's account changes, in the name of the operator at the
    /// console (``Operator/actor``): audited with the change, and journaled for a running hub.
    func apply(_ change: (StaffAccounts, OrgID, StaffAccounts.Author) async throws -> Void) async throws {
        try await Output.withDatabase(data) { database in
            try await Operator.withAccounts(database, dataDirectory: data) { try await change($0, OrgID(org), Operator.author) }
        }
    }
}

extension UserCommand {
    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable an account: it can no longer log in, and a running hub ends its live sessions within a second.")
        @OptionGroup var account: AccountOptions

        func run() async throws {
            try await account.apply { try await $0.setDisabled(org: $1, name: account.user, disabled: true, by: $2) }
            Output.line("disabled '\(account.user)' in \(account.org)")
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-enable a disabled account.")
        @OptionGroup var account: AccountOptions

        func run() async throws {
            try await account.apply { try await $0.setDisabled(org: $1, name: account.user, disabled: false, by: $2) }
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
            try await account.apply { old = try await $0.setRole(org: $1, name: account.user, role: role, by: $2) }
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
            try await account.apply { try await $0.setDisplayName(org: $1, name: account.user, displayName: name, by: $2) }
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
            try await account.apply { try await $0.resetSecondFactor(org: $1, name: account.user, by: $2) }
            Output.line("reset the second factor of '\(account.user)' in \(account.org); it enrols at its next login")
        }
    }

    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift a lockout after failed logins.")
        @OptionGroup var account: AccountOptions

        func run() async throws {
            try await account.apply { try await $0.unlock(org: $1, name: account.user, by: $2) }
            Output.line("unlocked '\(account.user)' in \(account.org)")
        }
    }
}

extension Role: ExpressibleByArgument {}
