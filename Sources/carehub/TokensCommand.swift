import ArgumentParser
import CareHubCore
import CareHubServer
import CareHubStorage
import CareHubTerminal
import Foundation

struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "Manage integration tokens (for the systems declared as 'integration NAME type=api').",
        discussion: """
            Scopes and their risk: low org:read queue:read users:read; medium \
            conversations:read conversations:write audit:read webhooks:write; high (PHI) users:write messages:read \
            transcripts:read attachments:read forms:read conversations:open. A token with a high-risk scope \
            waits for approval by another operator; in a HIPAA organisation only an integration with baa=yes \
            may hold one. Every step is audited (token.created, token.approved, token.revoked).
            """,
        subcommands: [Create.self, List.self, Approve.self, Revoke.self])

    /// The options every token command shares.
    struct Common: ParsableArguments {
        @Option(help: "The organisation id (must exist in --config).")
        var org: String

        @Option(help: "The data directory.")
        var data = "./data"

        @Option(help: "The pipeline configuration, which declares the organisation's integrations.")
        var config = "pipeline.conf"

        /// Runs `body` with the token rules over the data directory's store, audited in the
        /// operator's name.
        func run<T>(_ body: (APITokens) async throws -> T) async throws -> T {
            let hubConfig = try await Output.failing { try ConfigLoader.load(path: config) }
            return try await Output.withDatabase(data) { database in
                let store = SQLiteAPITokenStore(database: database, audit: try Operator.auditLog(database, dataDirectory: data))
                return try await body(APITokens(store: store, config: { hubConfig }))
            }
        }
    }

    /// `--id tok_…`, checked.
    struct TokenIDOption: ParsableArguments {
        @Option(help: "The token id (tok_…).")
        var id: String

        func validate() throws {
            guard APITokenID(checking: id) != nil else { throw ValidationError("--id: expected tok_ and 16 hex digits") }
        }

        var value: APITokenID { APITokenID(id) }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a token; its secret is printed once, on the first line, and never kept.",
            discussion: "Example: carehub tokens create --org riverside-clinic --integration ehr --scopes org:read,transcripts:read --expires 90d")

        @OptionGroup var common: Common

        @Option(help: "The integration it belongs to (an 'integration NAME type=api' of the organisation).")
        var integration: String

        @Option(help: "Comma-separated scopes, e.g. org:read,queue:read.")
        var scopes: String

        @Option(help: "How long it lasts: 1d to 365d.")
        var expires = "90d"

        @Option(help: "Comma-separated CIDR blocks it may be used from (default: anywhere).")
        var allowFrom: String?

        func validate() throws {
            guard APIScope.list(scopes) != nil else {
                throw ValidationError("--scopes: expected some of \(APIScope.allCases.map(\.rawValue).joined(separator: ", ")), each once")
            }
            guard let life = ConfigValue.duration(expires), (Duration.seconds(86_400)...Duration.seconds(365 * 86_400)).contains(life) else {
                throw ValidationError("--expires: expected 1d to 365d, such as 90d")
            }
            if let allowFrom, allowFrom.split(separator: ",", omittingEmptySubsequences: false).contains(where: { CIDRBlock(String($0)) == nil }) {
                throw ValidationError("--allow-from: expected CIDR blocks such as 10.0.0.0/8,2001:db8::/32")
            }
        }

        func run() async throws {
            let life = TimeInterval(ConfigValue.duration(expires)!.components.seconds)
            let allowed = allowFrom?.split(separator: ",").compactMap { CIDRBlock(String($0)) } ?? []
            let made = try await common.run { tokens in
                try await tokens.create(
                    org: OrgID(common.org), integration: integration, scopes: APIScope.list(scopes)!, lifetime: life, allowFrom: allowed,
                    by: Operator.actor, address: "local", at: Date())
            }
            Output.line(made.secret)
            Output.line("made \(made.token.id) for \(made.token.integration) in \(common.org): \(Self.describe(made.token))")
            if made.token.state == .awaitingApproval {
                Output.line("it reaches PHI: another operator approves it with 'carehub tokens approve --org \(common.org) --id \(made.token.id)'")
            }
        }

        static func describe(_ token: APIToken) -> String {
            let expiry = ISO8601DateFormatter().string(from: token.expiresAt)
            return "\(token.state.rawValue), \(token.risk.rawValue) risk, scopes \(token.scopes.map(\.rawValue).joined(separator: ",")), expires \(expiry)"
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List an organisation's tokens, newest first: id, integration, state, risk, scopes, expiry, allowed addresses, maker.")

        @OptionGroup var common: Common

        func run() async throws {
            let listed = try await common.run { try await $0.list(org: OrgID(common.org)) }
            let now = Date()
            for token in listed {
                let state = token.state == .active && now >= token.expiresAt ? "expired" : token.state.rawValue
                Output.line([
                    token.id.rawValue, token.integration, state, token.risk.rawValue, token.scopes.map(\.rawValue).joined(separator: ","),
                    ISO8601DateFormatter().string(from: token.expiresAt),
                    token.allowFrom.isEmpty ? "any" : token.allowFrom.map(\.description).joined(separator: ","), TerminalText.field(token.createdBy),
                ].joined(separator: "\t"))
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve a token that reaches PHI; the operator who made it may not approve it.")

        @OptionGroup var common: Common

        @OptionGroup var token: TokenIDOption

        func run() async throws {
            let approved = try await common.run { tokens in
                try await tokens.approve(org: OrgID(common.org), id: token.value, by: Operator.actor, address: "local", at: Date())
            }
            Output.line("approved \(approved.id): \(Create.describe(approved))")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token for good.")

        @OptionGroup var common: Common

        @OptionGroup var token: TokenIDOption

        func run() async throws {
            let revoked = try await common.run { tokens in
                try await tokens.revoke(org: OrgID(common.org), id: token.value, by: Operator.actor, address: "local", at: Date())
            }
            Output.line("revoked \(revoked.id)")
        }
    }
}
