import ArgumentParser
import CareHubCore
import CareHubServer
import CareHubStorage
import Foundation

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check and read the tamper-evident audit log.",
        subcommands: [Verify.self, Export.self, WhoRead.self, WhatRead.self])

    struct DataOption: ParsableArguments {
        @Option(help: "The data directory.")
        var data = "./data"

    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the audit hash chain and check the signed checkpoints.",
            discussion: "Exit status 0 and 'the audit chain holds' if nothing was edited, deleted or reordered; 1 naming the first event that does not hold otherwise.")
        @OptionGroup var options: DataOption

        func run() async throws {
            let verdict = try await Output.withDatabase(options.data) { database in
                try await SQLiteAuditLog(database: database).verify(
                    checkpointKey: try MasterKey.auditKey(from: try MasterKey.load(dataDirectory: options.data)))
            }
            switch verdict {
            case .holds: Output.line(verdict.description)
            case .broken:
                Output.error(verdict.description)
                throw ExitCode(1)
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write audit events as JSON Lines (one object per line) for a SIEM.",
            discussion: "Fields: id, at (ms since the epoch), org, actor, address, action, target, detail. No event holds message text or secrets.")
        @OptionGroup var options: DataOption
        @Option(help: "Only this organisation.")
        var org: String?
        @Option(help: "Only events at or after this time (ISO 8601, e.g. 2026-01-31T00:00:00Z).")
        var since: String?

        func run() async throws {
            var start: Date?
            if let since {
                guard let parsed = ISO8601DateFormatter().date(from: since) else {
                    throw ValidationError("--since: expected an ISO 8601 time such as 2026-01-31T00:00:00Z, found '\(since)'")
                }
                start = parsed
            }
            try await print(options) { try $0.entries(org: org.map(OrgID.init), since: start) }
        }
    }

    struct WhoRead: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "who-read", abstract: "Everyone who read or was delivered a conversation's messages, as JSON Lines.")
        @OptionGroup var options: DataOption
        @Option(help: "The conversation id (c_…).")
        var conversation: String

        func run() async throws {
            try await print(options) { log in
                try log.entries(target: conversation).filter { $0.event.action.hasPrefix("phi.") }
            }
        }
    }

    struct WhatRead: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "what-read", abstract: "Every conversation a user read or was delivered, as JSON Lines.")
        @OptionGroup var options: DataOption
        @Option(help: "The user name.")
        var user: String
        @Option(help: "Only this organisation.")
        var org: String?

        func run() async throws {
            try await print(options) { log in
                try log.entries(org: org.map(OrgID.init)).filter { entry in
                    entry.event.action == "phi.read" && entry.event.actor == user
                        || entry.event.action == "phi.delivered" && entry.event.detail.split(separator: " ")
                            .contains { $0.hasPrefix("readers=") && $0.dropFirst(8).split(separator: ",").contains(Substring(user)) }
                }
            }
        }
    }

    static func line(_ entry: SQLiteAuditLog.Entry) -> String {
        var writer = JSONWriter()
        entry.write(to: &writer)
        return writer.finish()
    }
}

private func print(_ options: AuditCommand.DataOption, _ select: (SQLiteAuditLog) throws -> [SQLiteAuditLog.Entry]) async throws {
    try await Output.withDatabase(options.data) { database in
        for entry in try select(SQLiteAuditLog(database: database)) { Output.line(AuditCommand.line(entry)) }
    }
}
