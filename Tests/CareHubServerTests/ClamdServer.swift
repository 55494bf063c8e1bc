import CareHubCore
import CareHubTesting
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A real ClamAV daemon for a test: Debian's clamd in a temporary directory, with its own
/// configuration and a signature file the test writes (no signature download is possible here),
/// so EICAR is found as `CareHub.Test.EICAR.UNOFFICIAL` and ``canary`` as
/// `CareHub.Test.Canary.UNOFFICIAL`. Fails the test, never skips it, when clamd is not installed
/// (scripts/setup.sh installs clamav-daemon).
final class ClamdServer {
    static let binary = "/usr/sbin/clamd"
    /// ClamAV's standard test file, known to this clamd as `CareHub.Test.EICAR`.
    static let eicar = MemoryScanner.eicar
    /// Bytes this clamd knows as `CareHub.Test.Canary`, harmless anywhere else.
    static let canary = Array("CAREHUB-TEST-MALWARE-CANARY-7f3a".utf8)
    /// The signatures this clamd knows, by name (as a ``MemoryScanner`` takes them).
    static let signatures = ["CareHub.Test.EICAR": eicar, "CareHub.Test.Canary": canary]

    let directory: URL
    let socketPath: String
    /// The loopback port clamd also listens on, when asked to.
    let tcpPort: Int?
    private let process = Process()

    var unixAddress: ScannerAddress { .unix(path: socketPath) }

    /// Starts clamd and waits until it answers `PING`; `streamMaxLength` as clamd.conf writes it.
    init(streamMaxLength: String = "60M", tcp: Bool = false) throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "clamd is not installed: run scripts/setup.sh (clamav-daemon)")
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("carehub-clamd-\(UUID().uuidString.prefix(8))")
        let database = directory.appendingPathComponent("db")
        try FileManager.default.createDirectory(at: database, withIntermediateDirectories: true)
        // An extended signature a line: name, any target type, any offset, the bytes in hex.
        let signatureLines = Self.signatures.sorted { $0.key < $1.key }.map { name, bytes in
            "\(name):0:*:\(bytes.map { String(format: "%02x", $0) }.joined())\n"
        }
        try signatureLines.joined().write(to: database.appendingPathComponent("carehub-test.ndb"), atomically: true, encoding: .utf8)
        socketPath = directory.appendingPathComponent("clamd.sock").path
        tcpPort = tcp ? try Self.freePort() : nil
        var lines = [
            "Foreground yes", "LocalSocket \(socketPath)", "DatabaseDirectory \(database.path)",
            "StreamMaxLength \(streamMaxLength)", "LogFile \(directory.appendingPathComponent("clamd.log").path)",
        ]
        if let tcpPort { lines += ["TCPSocket \(tcpPort)", "TCPAddr 127.0.0.1"] }
        let config = directory.appendingPathComponent("clamd.conf")
        try (lines.joined(separator: "\n") + "\n").write(to: config, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["--config-file=\(config.path)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<600 {
            if ping() { return }
            try #require(process.isRunning, "clamd exited at start; see \(directory.path)/clamd.log")
            usleep(100_000)
        }
        stop()
        Issue.record("clamd did not answer PING within 60 s")
        throw ScannerUnavailable("clamd did not start")
    }

    deinit { stop() }

    /// Whether clamd answers `zPING` on its Unix socket.
    func ping() -> Bool {
        guard let fd = Self.connect(to: socketPath) else { return false }
        defer { close(fd) }
        _ = Array("zPING\0".utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var reply = [UInt8](repeating: 0, count: 16)
        let count = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count == 5 && Array(reply[0..<5]) == Array("PONG\0".utf8)
    }

    /// A socket connected to the Unix socket at `path`, or nil when nothing listens there.
    static func connect(to path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Stops clamd (SIGTERM, then waits) and removes its directory.
    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// A loopback port nothing listens on just now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                Glibc.bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        try #require(bound, "no free loopback port")
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
