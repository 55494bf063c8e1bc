import ArgumentParser
import CareHubCore
import CareHubStorage
import Foundation

/// Unbuffered writes to standard output and standard error, so lines reach a pipe at once.
enum Output {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Runs `body`; any error other than an exit status becomes the one-line `carehub: …`
    /// message on standard error and exit status 1.
    static func failing<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let exit as ExitCode {
            throw exit
        } catch let refusal as PipelineError {
            // The same refusal the admin API gives, without its wire code.
            Output.error("carehub: \(refusal.message)")
            throw ExitCode(1)
        } catch {
            Output.error("carehub: \(error)")
            throw ExitCode(1)
        }
    }

    /// Opens the data directory's database, runs `body` and closes it, with errors reported as
    /// ``failing(_:)`` does.
    static func withDatabase<T>(_ directory: String, _ body: (CareHubDatabase) async throws -> T) async throws -> T {
        try await failing {
            let database = try CareHubDatabase(directory: directory)
            let result: T
            do {
                result = try await body(database)
            } catch {
                try? database.close()
                throw error
            }
            try database.close()
            return result
        }
    }
}
