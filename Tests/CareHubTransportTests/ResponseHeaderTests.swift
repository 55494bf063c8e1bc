@testable import CareHubTransport
import Foundation
import Testing

/// A self-signed certificate for 127.0.0.1 in a temporary directory, made by `openssl`.
struct SelfSignedCertificate {
    let directory: String
    var certificate: String { directory + "/cert.pem" }
    var key: String { directory + "/key.pem" }

    init() throws {
        directory = NSTemporaryDirectory() + "carehub-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let status = try run("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", certificate,
        ]).status
        try #require(status == 0, "openssl req failed")
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

/// Runs a program to its end with `input` on its standard input; its standard output and status.
@discardableResult
func run(_ program: String, _ arguments: [String], input: [UInt8] = []) throws -> (output: String, status: Int32) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    let stdin = Pipe(), stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = FileHandle.nullDevice
    try process.run()
    stdin.fileHandleForWriting.write(Data(input))
    try stdin.fileHandleForWriting.close()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (String(decoding: output, as: UTF8.self), process.terminationStatus)
}

/// Sends `request` over TLS (no ALPN, so HTTP/1.1) and returns what came back until the server closed.
func tlsExchange(port: Int, _ request: String, then bytes: [UInt8] = []) throws -> String {
    try run("/usr/bin/timeout", ["20", "/usr/bin/openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-quiet", "-ign_eof"],
            input: Array(request.utf8) + bytes).output
}

@Suite("response headers", .serialized)
struct ResponseHeaderTests {
    func webRoot() throws -> String {
        let root = NSTemporaryDirectory() + "carehub-web-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "<p>home</p>".write(toFile: root + "/index.html", atomically: true, encoding: .utf8)
        return root
    }

    @Test func pagesMayConnectToTheirOwnOriginOnly() throws {
        let root = try webRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let harness = Harness { $0.staticRoot = root }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let head = try RawWebSocketClient(port: port).get("/").head.lowercased()
        let policy = head.split(separator: "\r\n").first { $0.hasPrefix("content-security-policy:") }
        #expect(policy?.contains("connect-src 'self';") == true, "\(policy ?? "no policy")")
        #expect(policy?.contains("ws:") == false && policy?.contains("wss:") == false)
        #expect(head.contains("x-content-type-options: nosniff"))
        #expect(head.contains("x-frame-options: deny"))
        // Plain HTTP says nothing about transport security.
        #expect(!head.contains("strict-transport-security"))
    }

    @Test func everyResponseOverTLSCarriesStrictTransportSecurity() throws {
        let tls = try SelfSignedCertificate()
        defer { tls.remove() }
        let root = try webRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let harness = Harness {
            $0.staticRoot = root
            $0.tlsCertificatePath = tls.certificate
            $0.tlsPrivateKeyPath = tls.key
            $0.textRoutes = ["/metrics": { "up 1\n" }]
        }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        for (path, status) in [("/", "200"), ("/metrics", "200"), ("/missing.html", "404")] {
            let response = try tlsExchange(port: port, "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            let head = response.components(separatedBy: "\r\n\r\n").first?.lowercased() ?? ""
            #expect(head.hasPrefix("http/1.1 \(status)"), "\(path): \(head.prefix(40))")
            #expect(head.contains("\r\nstrict-transport-security: max-age=31536000\r\n") || head.hasSuffix("\r\nstrict-transport-security: max-age=31536000"),
                    "\(path) has no one-year HSTS header: \(head)")
        }
    }

    @Test func aConnectionOverTLSIsReportedAsTLS() throws {
        let tls = try SelfSignedCertificate()
        defer { tls.remove() }
        let harness = Harness {
            $0.tlsCertificatePath = tls.certificate
            $0.tlsPrivateKeyPath = tls.key
        }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        // The client sends a close frame right after the upgrade, so the exchange ends.
        let close: [UInt8] = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]
        let response = try tlsExchange(port: port, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n", then: close)
        #expect(response.hasPrefix("HTTP/1.1 101"))
        #expect(harness.wait { $0.contains { $0.1 == .closed } })
        let opened = harness.eventKinds().compactMap { if case .opened(let info) = $0 { info } else { nil } }
        #expect(opened.map(\.tls) == [true])
    }
}
