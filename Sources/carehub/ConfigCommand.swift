import ArgumentParser
import CareHubCore
import CareHubServer

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with pipeline configuration files.",
        subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a pipeline configuration and summarise it.",
            discussion: "Exit status 0 if valid; 1 with one `file:line: problem` line per problem on standard error otherwise.")

        @Argument(help: "The configuration file, e.g. pipeline.conf.")
        var file: String

        @Flag(name: .long, help: "Print the summary as JSON: {\"orgs\":[{\"id\":…,\"name\":…,\"hipaa\":…,\"hours\":…,\"timeZone\":…,\"stages\":[…]}]}.")
        var json = false

        func run() async throws {
            do {
                let config = try ConfigLoader.load(path: file)
                if json {
                    Output.line(config.summaryJSON())
                } else {
                    Output.line("\(file): OK, \(config.orgs.count) organisation\(config.orgs.count == 1 ? "" : "s")")
                    Output.line(config.summaryText())
                }
            } catch let error as ConfigError {
                Output.error(error.description)
                throw ExitCode(1)
            }
        }
    }
}
