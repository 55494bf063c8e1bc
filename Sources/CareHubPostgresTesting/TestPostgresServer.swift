import Foundation
import Synchronization

/// A throwaway PostgreSQL server for tests: `initdb` into a fresh temporary directory, then
/// `pg_ctl start` on a free loopback port, with its socket directory inside the temporary
/// directory. PostgreSQL refuses to run as root, so as root the server's programs run as the
/// `postgres` user (`runuser`), which owns the directory.
///
/// Tests connect as the role ``role`` (no password, `trust` on loopback) to a database of their
/// own from ``createDatabase(prefix:)``, so they do not see each other. ``shared()`` starts one
/// server per test process on first use; a test that stops the server makes its own with
/// ``init()``. Every server is stopped and its directory removed when the process exits, or
/// earlier with ``destroy()``.
///
/// ```swift
/// let url = try TestPostgresServer.shared().createDatabase()
/// let client = try PostgresClient(url: url)
/// ```
///
/// The PostgreSQL binaries are found under `/usr/lib/postgresql/<newest>/bin`, or in
/// `CAREHUB_POSTGRES_BIN`.
public final class TestPostgresServer: Sendable {
    /// The role tests connect as; it may create databases.
    public let role = "carehub"
    /// The loopback TCP port the server listens on.
    public let port: Int
    /// The temporary directory holding the data directory, socket and log.
    public let directory: String
    private let binaries: String

    private var dataDirectory: String { directory + "/data" }
    private var socketDirectory: String { directory + "/socket" }
    private var logFile: String { directory + "/server.log" }

    /// Initialises and starts a new server; a few seconds.
    public init() throws {
        binaries = try Self.findBinaries()
        var template = Array((NSTemporaryDirectory() + "carehub-pg-XXXXXX").utf8CString)
        guard let created = mkdtemp(&template) else { throw TestPostgresError("cannot create a temporary directory") }
        directory = String(cString: created)
        port = try Self.freePort()
        Self.registry.withLock { $0.append(directory) }
        registerCleanupAtExit()
        try FileManager.default.createDirectory(atPath: directory + "/socket", withIntermediateDirectories: false)
        try Self.giveToServerUser(directory)
        try Self.giveToServerUser(directory + "/socket")
        try asServerUser(
            "initdb", "-D", dataDirectory, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
        try start()
        try psql("CREATE ROLE \(role) LOGIN CREATEDB")
    }

    /// The server of this test process, started on first use.
    public static func shared() throws -> TestPostgresServer {
        try sharedServer.get()
    }

    private static let sharedServer = Result { try TestPostgresServer() }

    /// Starts the server (again) and waits until it accepts connections.
    public func start() throws {
        try asServerUser(
            "pg_ctl", "start", "-w", "-t", "60", "-D", dataDirectory, "-l", logFile, "-o",
            "-p \(port) -k \(socketDirectory) -c listen_addresses=127.0.0.1 -c max_connections=200")
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are terminated, nothing is lost).
    public func stop() throws {
        try asServerUser("pg_ctl", "stop", "-w", "-m", "fast", "-D", dataDirectory)
    }

    /// Creates a new empty database owned by ``role`` and returns the URL to connect to it.
    public func createDatabase(prefix: String = "test") throws -> String {
        let name = "\(prefix)_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        try psql("CREATE DATABASE \(name) OWNER \(role)")
        return url(database: name)
    }

    /// The URL of `database` on this server, as ``role``.
    public func url(database: String) -> String {
        "postgresql://\(role)@127.0.0.1:\(port)/\(database)"
    }

    /// Runs SQL as the superuser on the `postgres` database (`psql -c`).
    public func psql(_ sql: String) throws {
        try Self.run(binaries + "/psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-d", "postgres", "-c", sql])
    }

    /// Stops the server at once and removes its directory.
    public func destroy() {
        Self.registry.withLock { $0.removeAll { $0 == directory } }
        Self.remove(directory, binaries: binaries)
    }

    private func asServerUser(_ program: String, _ arguments: String...) throws {
        let path = binaries + "/" + program
        if getuid() == 0 {
            try Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", path] + arguments)
        } else {
            try Self.run(path, arguments)
        }
    }

    private static func remove(_ directory: String, binaries: String) {
        let stop = [binaries + "/pg_ctl", "stop", "-m", "immediate", "-D", directory + "/data"]
        _ = try? run(getuid() == 0 ? "/usr/sbin/runuser" : stop[0], getuid() == 0 ? ["-u", "postgres", "--"] + stop : Array(stop.dropFirst()))
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Directories of servers still running, stopped at exit.
    private static let registry = Mutex<[String]>([])

    private func registerCleanupAtExit() {
        _ = Self.registerAtExit
        Self.binariesAtExit.withLock { $0 = binaries }
    }

    private static let binariesAtExit = Mutex("")
    private static let registerAtExit: Void = {
        atexit {
            let binaries = TestPostgresServer.binariesAtExit.withLock { $0 }
            for directory in TestPostgresServer.registry.withLock({ $0 }) {
                TestPostgresServer.remove(directory, binaries: binaries)
            }
        }
    }()

    private static func findBinaries() throws -> String {
        if let configured = ProcessInfo.processInfo.environment["CAREHUB_POSTGRES_BIN"] { return configured }
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        guard let newest = versions.compactMap(Int.init).sorted().last(where: { FileManager.default.isExecutableFile(atPath: "\(root)/\($0)/bin/initdb") }) else {
            throw TestPostgresError("no PostgreSQL server under \(root) (apt-get install postgresql)")
        }
        return "\(root)/\(newest)/bin"
    }

    private static func giveToServerUser(_ path: String) throws {
        guard getuid() == 0 else { return }
        guard let user = getpwnam("postgres") else { throw TestPostgresError("running as root needs a 'postgres' user to run the server") }
        guard chown(path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else { throw TestPostgresError("cannot give \(path) to postgres") }
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    private static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestPostgresError("cannot open a socket") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        guard bound else { throw TestPostgresError("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Runs a program to its end with stdin from /dev/null and stdout and stderr to a file, and
    /// returns what it printed. posix_spawn and waitpid rather than Foundation's Process, whose
    /// waitUntilExit can miss the exit of a child that leaves a daemon behind (pg_ctl start).
    @discardableResult
    private static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let outputPath = NSTemporaryDirectory() + "carehub-pg-output-\(UUID().uuidString)"
        defer { unlink(outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw TestPostgresError("cannot run \(executable): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // WIFEXITED and WEXITSTATUS are macros: exited normally when the low 7 bits are 0.
        let exitedNormally = status & 0x7f == 0
        let code = (status >> 8) & 0xff
        guard exitedNormally, code == 0 else {
            let name = URL(fileURLWithPath: executable).lastPathComponent
            throw TestPostgresError("\(name) \(arguments.joined(separator: " ")) failed (status \(status)): \(text)")
        }
        return text
    }
}

/// A test server that could not be set up; the text says which step failed and what it printed.
public struct TestPostgresError: Error, CustomStringConvertible {
    /// What went wrong.
    public let description: String

    init(_ description: String) { self.description = description }
}
