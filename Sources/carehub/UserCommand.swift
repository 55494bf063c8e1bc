import ArgumentParser
import CareHubCore
import CareHubCrypto
import CareHubServer
import CareHubStorage
import Foundation

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Manage staff accounts.",
        subcommands: [Add.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a staff account; the password is read from standard input (one line).",
            discussion: "Example: printf '%s\\n' 'a long passphrase' | carehub user add --org riverside-clinic --user nurse.joy --role staff")

        @Option(help: "The organisation id (must exist in --config).")
        var org: String

        @Option(help: "The login name (letters, digits, '.', '_', '-'; up to 64).")
        var user: String

        @Option(help: "staff or admin.")
        var role: Role = .staff

        @Option(help: "The data directory.")
        var data = "./data"

        @Option(help: "The pipeline configuration, to check that the organisation exists.")
        var config = "pipeline.conf"

        func validate() throws {
            guard !user.isEmpty, user.count <= 64,
                  user.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || ".-_".unicodeScalars.contains($0) })
            else { throw ValidationError("--user: expected 1-64 letters, digits, '.', '_' or '-'") }
        }

        func run() async throws {
            let hubConfig: HubConfig
            do {
                hubConfig = try ConfigLoader.load(path: config)
            } catch {
                Output.error("carehub: \(error)")
                throw ExitCode(1)
            }
            guard hubConfig.org(OrgID(org)) != nil else {
                Output.error("carehub: no organisation '\(org)' in \(config); known: \(hubConfig.orgs.map(\.settings.id.rawValue).joined(separator: ", "))")
                throw ExitCode(1)
            }
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                Output.error("carehub: expected the password on standard input")
                throw ExitCode(1)
            }
            if let problem = PasswordPolicy().problem(with: line) {
                Output.error("carehub: password refused: \(problem)")
                throw ExitCode(1)
            }
            do {
                let database = try CareHubDatabase(directory: data)
                let hash = try PasswordHasher().hash(line)
                try SQLiteUserDirectory(database: database).add(StaffUser(org: OrgID(org), name: user, role: role, passwordHash: hash))
                try database.close()
            } catch {
                Output.error("carehub: \(error)")
                throw ExitCode(1)
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
            do {
                let database = try CareHubDatabase(directory: data)
                let users = try SQLiteUserDirectory(database: database).list(org: OrgID(org))
                for user in users {
                    Output.line("\(user.name)\t\(user.role.rawValue)\(user.disabled ? "\tdisabled" : "")")
                }
                try database.close()
            } catch {
                Output.error("carehub: \(error)")
                throw ExitCode(1)
            }
        }
    }
}

extension Role: ExpressibleByArgument {}
