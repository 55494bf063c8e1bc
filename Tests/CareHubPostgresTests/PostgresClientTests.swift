import CareHubPostgres
import CareHubPostgresTesting
import Foundation
import Synchronization
import Testing

@Suite("PostgreSQL client against a real server")
struct PostgresClientTests {
    @Test func parametersRoundTripEveryType() async throws {
        try await withFreshDatabase { client, _ in
            try await client.execute("CREATE TABLE t (s text, b bytea, i int8, small int4, d float8, f bool, n text)")
            let text = "O'Brien said \"hi\" \\ back; 診察 🩺 -- $1"
            let allBytes = (0...255).map(UInt8.init)
            let inserted = try await client.execute(
                "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [.text(text), .bytea(allBytes), .int(Int64.min), .int(-42), .double(0.1), .bool(true), .null])
            #expect(inserted == 1)
            let rows = try await client.query("SELECT * FROM t")
            let row = try #require(rows.first)
            #expect(try row.string("s") == text)
            #expect(try row.bytes("b") == allBytes)
            #expect(try row.int("i") == Int64.min)
            #expect(try row.int("small") == -42)
            #expect(try row.double("d") == 0.1)
            #expect(try row.bool("f") == true)
            #expect(try row.isNull("n"))
            #expect(try !row.isNull("s"))
            #expect(throws: PostgresError.unexpectedNull("n")) { try row.string("n") }
            #expect(throws: PostgresError.unknownColumn("missing")) { try row.string("missing") }
            #expect(try row.value("b") == .bytea(allBytes))
            #expect(try row.value("n") == .null)

            let empty = try await client.query("SELECT $1::bytea AS e, $2::bool AS f, $3::float8 AS inf", [.bytea([]), .bool(false), .double(-.infinity)])
            #expect(try empty[0].bytes("e") == [])
            #expect(try empty[0].bool("f") == false)
            #expect(try empty[0].double("inf") == -.infinity)
            // Parameters are values, never SQL.
            let injected = try await client.query("SELECT $1 AS v", [.text("'); DROP TABLE t; --")])
            #expect(try injected[0].string("v") == "'); DROP TABLE t; --")
            #expect(try await client.query("SELECT count(*) AS c FROM t")[0].int("c") == 1)
            // libpq would cut text at a NUL; the client refuses it instead.
            await #expect(throws: PostgresError.nulInText(parameter: 2)) { try await client.query("SELECT $1, $2", ["a", "b\u{0}c"]) }
        }
    }

    @Test func uniqueViolationIsRecognised() async throws {
        try await withFreshDatabase { client, _ in
            try await client.execute("CREATE TABLE users (email text PRIMARY KEY)")
            try await client.execute("INSERT INTO users VALUES ($1)", ["a@clinic.example"])
            let error = try await #require(throws: PostgresError.self) {
                try await client.execute("INSERT INTO users VALUES ($1)", ["a@clinic.example"])
            }
            #expect(error.isUniqueViolation)
            #expect(error.sqlState == "23505")
            #expect(!error.isConnectionFailure && !error.isSerializationFailure)
            // The detail quotes the value; the description does not.
            #expect(error.detail?.contains("a@clinic.example") == true)
            #expect(!error.description.contains("a@clinic.example"))
            let syntax = try await #require(throws: PostgresError.self) { try await client.query("SELEC 1") }
            #expect(syntax.sqlState == "42601" && !syntax.isUniqueViolation)
        }
    }

    @Test func transactionCommitsOrRollsBack() async throws {
        struct Refused: Error {}
        try await withFreshDatabase { client, _ in
            try await client.execute("CREATE TABLE notes (body text)")
            let count = try await client.transaction { tx in
                try tx.execute("INSERT INTO notes VALUES ($1)", ["kept"])
                return try tx.query("SELECT count(*) AS c FROM notes")[0].int("c")
            }
            #expect(count == 1)
            await #expect(throws: Refused.self) {
                try await client.transaction { tx in
                    try tx.execute("INSERT INTO notes VALUES ($1)", ["dropped"])
                    throw Refused()
                }
            }
            // A failed statement whose error the body swallowed aborts the transaction.
            await #expect(throws: PostgresError.transactionAborted) {
                try await client.transaction { tx in
                    try tx.execute("INSERT INTO notes VALUES ($1)", ["dropped too"])
                    _ = try? tx.query("SELECT 1/0")
                }
            }
            let bodies = try await client.query("SELECT body FROM notes").map { try $0.string("body") }
            #expect(bodies == ["kept"])
            // The connection is usable and outside any transaction afterwards.
            #expect(try await client.query("SELECT 1 AS one")[0].int("one") == 1)
        }
    }

    @Test func concurrentQueriesUseThePool() async throws {
        try await withFreshDatabase(connections: 4) { client, _ in
            let pids = try await withThrowingTaskGroup(of: Int64.self) { group in
                for _ in 0..<12 {
                    group.addTask { try await client.query("SELECT pg_backend_pid() AS pid, pg_sleep(0.2)")[0].int("pid") }
                }
                return try await group.reduce(into: Set<Int64>()) { $0.insert($1) }
            }
            // Twelve queries that each hold their connection for a while: all four connections served.
            #expect(pids.count == 4)
        }
    }

    @Test func synchronousCommitStaysOn() async throws {
        try await withFreshDatabase { client, _ in
            let setting = try await client.query("SHOW synchronous_commit")[0].string("synchronous_commit")
            #expect(setting == "on")
        }
    }

    @Test func invalidURLIsRefusedAtOnce() {
        #expect(throws: PostgresError.self) { try PostgresClient(url: "postgresql://host/db?nosuchoption=1") }
    }
}
