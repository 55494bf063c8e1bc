import ArgumentParser
import CareHubCrypto
import CareHubPostgresStorage
import CareHubServer
import CareHubStorage
import Foundation

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Copy the SQLite data set into an empty PostgreSQL database, and verify the copy.",
        discussion: """
            Applies the PostgreSQL schema to the --to database, then copies every table of DIR/carehub.sqlite into it \
            in one transaction, keeping ids (sequences continue after them) and the audit chain. The target must be \
            empty, and the SQLite database must have every schema version of this carehub (start the hub once on it \
            first). Stop the hub before migrating: rows written during the copy are not copied. The SQLite file is \
            only read.

            Before committing, each table's row count and content digest (SHA-256 over its rows in primary-key \
            order) are compared on both sides, and with the master key (DIR/master.key or $CAREHUB_MASTER_KEY) the \
            audit chain is recomputed on both. Prints 'table rows ok' per table and exits 0 when all match; \
            otherwise names the table that differs, commits nothing and exits 1. The master key is in neither \
            database: keep DIR/master.key (or $CAREHUB_MASTER_KEY) for the hub that uses the copy.
            """)

    @Option(help: "The data directory holding carehub.sqlite.")
    var data = "./data"

    @Option(help: "The PostgreSQL database to fill: postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME (libpq URL or key=value string).")
    var to: String

    func run() async throws {
        let auditKey: SymmetricKey? = try await Output.failing {
            let keyFile = (data as NSString).appendingPathComponent(MasterKey.fileName)
            guard ProcessInfo.processInfo.environment[MasterKey.environmentVariable] != nil || FileManager.default.fileExists(atPath: keyFile) else { return nil }
            return try MasterKey.auditKey(from: try MasterKey.load(dataDirectory: data))
        }
        do {
            let report = try await SQLiteToPostgres.migrate(directory: data, url: to, auditKey: auditKey)
            Self.print(report.tables)
            if let verdict = report.auditChain {
                Output.line(verdict.description)
            } else {
                Output.line("audit chain not recomputed: no master key in \(data) or $\(MasterKey.environmentVariable)")
            }
            Output.line("copied \(report.tables.reduce(0) { $0 + $1.targetRows }) rows in \(report.tables.count) tables")
        } catch let failure as SQLiteToPostgres.Failure {
            if case .verificationFailed(let report) = failure { Self.print(report.tables) }
            Output.error("carehub: \(failure)")
            throw ExitCode(1)
        } catch {
            Output.error("carehub: \(error)")
            throw ExitCode(1)
        }
    }

    /// `table  rows  ok`, one line per table; `DIFFERS` where the check failed.
    private static func print(_ tables: [SQLiteToPostgres.TableCheck]) {
        let width = max(5, tables.map(\.table.count).max() ?? 0)
        func pad(_ text: String, _ count: Int) -> String { text + String(repeating: " ", count: max(0, count - text.count)) }
        Output.line("\(pad("table", width))  \(pad("rows", 9))  ok")
        for table in tables {
            let rows = table.sourceRows == table.targetRows ? "\(table.targetRows)" : "\(table.sourceRows)≠\(table.targetRows)"
            Output.line("\(pad(table.table, width))  \(pad(rows, 9))  \(table.matches ? "ok" : "DIFFERS")")
        }
    }
}
