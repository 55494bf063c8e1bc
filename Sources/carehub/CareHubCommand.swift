import ArgumentParser

/// `carehub`: the CareHub chat hub and its administration commands.
@main
struct CareHubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carehub",
        abstract: "CareHub: a self-hosted chat hub for clinics, with per-organisation HIPAA pipelines.",
        subcommands: [ServeCommand.self, ConfigCommand.self, UserCommand.self, KeysCommand.self, AuditCommand.self, ConversationsCommand.self, TokensCommand.self, ConsoleCommand.self, MigrateCommand.self],
        defaultSubcommand: nil)
}
