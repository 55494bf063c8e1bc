import ArgumentParser
import CareHubCore
import CareHubServer
import CareHubStorage
import Foundation

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manage encryption keys.",
        subcommands: [Rotate.self, Status.self])

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rotate an organisation's key-encryption key.",
            discussion: """
                Creates a new key-encryption key version, rewraps every data key of the organisation under it \
                (messages are not re-encrypted), then retires and erases the old versions. Safe while the hub runs, \
                and safe to interrupt: running it again resumes the unfinished rotation. Recorded in the audit log.
                """)

        @Option(help: "The organisation id.")
        var org: String

        @Option(help: "The data directory.")
        var data = "./data"

        func run() async throws {
            try await Output.withDatabase(data) { database in
                let master = try MasterKey.load(dataDirectory: data)
                let cipher = EnvelopeCipher(master: master, store: SQLiteKeyStore(database: database))
                let report = try await cipher.rotate(org: OrgID(org)) { done in Output.error("rewrapped \(done) data keys…") }
                try await Operator.auditLog(database, dataDirectory: data).record(Operator.event(
                    org: org, action: "keys.rotated", target: "kek-v\(report.newVersion)",
                    detail: "rewrapped=\(report.rewrapped) retired=\(report.retiredVersions.map(String.init).joined(separator: ","))"))
                Output.line(report.description)
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an organisation's key-encryption key versions.")

        @Option(help: "The organisation id.")
        var org: String

        @Option(help: "The data directory.")
        var data = "./data"

        func run() async throws {
            try await Output.withDatabase(data) { database in
                let keks = try await SQLiteKeyStore(database: database).keks(org: OrgID(org))
                if keks.isEmpty { Output.line("\(org): no keys yet (created with the first message)") }
                for kek in keks { Output.line("\(org)\tv\(kek.version)\t\(kek.state.rawValue)") }
            }
        }
    }
}
