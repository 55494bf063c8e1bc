import CareHubAudit
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
            abstract: "Recompute the keyed audit chain and check its signed heads.",
            discussion: """
                Exit status 0 and 'the audit chain holds' if nothing was edited, deleted, reordered or appended \
                without the audit key; 1 naming the first event that does not hold otherwise. Every event must be \
                covered by a signed head. With --head (a head as the hub logs it, 'audit head seq=N hash=… sig=…') or \
                --head-file (the last line of the hub's --audit-anchor file, kept elsewhere), the trail must also \
                hold that head unchanged and not end before it: this catches a database rolled back or rewritten whole.
                """)
        @OptionGroup var options: DataOption
        @Option(help: "A signed head kept outside the database: 'seq=N hash=HEX sig=HEX'.")
        var head: String?
        @Option(help: "A file of signed heads (the hub's --audit-anchor file); its last line is checked.")
        var headFile: String?

        func validate() throws {
            if head != nil && headFile != nil { throw ValidationError("--head and --head-file exclude each other") }
            if let head, AuditHead(parsing: head) == nil { throw ValidationError("--head: expected 'seq=N hash=HEX sig=HEX', found '\(head)'") }
        }

        func run() async throws {
            let anchor: AuditHead? = try await Output.failing {
                if let head { return AuditHead(parsing: head) }
                guard let headFile else { return nil }
                guard let data = FileManager.default.contents(atPath: headFile) else { throw ValidationError("--head-file: cannot read \(headFile)") }
                let last = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
                guard let parsed = AuditHead(parsing: last) else { throw ValidationError("--head-file: its last line is not a signed head ('audit head seq=N hash=HEX sig=HEX')") }
                return parsed
            }
            let verdict = try await Output.withDatabase(options.data) { database in
                try await SQLiteAuditLog(database: database).verify(
                    checkpointKey: try MasterKey.auditKey(from: try MasterKey.load(dataDirectory: options.data)), anchor: anchor)
            }
            switch verdict {
            case .holds: Output.line(verdict.description + (anchor.map { ", anchored head at event \($0.seq) included" } ?? ""))
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
            commandName: "who-read", abstract: "Everyone who read or was delivered a conversation's messages or pre-chat form, as JSON Lines.")
        @OptionGroup var options: DataOption
        @Option(help: "The conversation id (c_…).")
        var conversation: String

        func run() async throws {
            try await print(options) { log in
                // A room list that showed the visitor's name and reason is one read of several rooms.
                let listings = try log.entries(target: "rooms", action: "phi.read").filter { entry in
                    entry.event.detail.split(separator: " ").contains { $0.hasPrefix("rooms=") && $0.dropFirst(6).split(separator: ",").contains(Substring(conversation)) }
                }
                return (try log.entries(target: conversation).filter { $0.event.action.hasPrefix("phi.") } + listings).sorted { $0.id < $1.id }
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
