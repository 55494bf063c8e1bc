import Foundation
import Synchronization

/// A webhook endpoint over real TLS for tests of the HTTPS client and the notification
/// dispatcher: a small server (Python's `ssl` module, in a child process) with its own
/// self-signed certificate for 127.0.0.1, made by `openssl` in a temporary directory. The
/// certificate is the CA file a client must be given to trust it, and no other sink's.
///
/// ```swift
/// let sink = try TLSSink(.holdHandshake)
/// // … a client connects; the sink has its ClientHello but has not answered it …
/// try await sink.waitForClientHello()
/// sink.release()
/// let request = try await sink.nextRequest()
/// ```
/// The child process and its pipes are touched only under the log's lock or from `deinit`.
public final class TLSSink: @unchecked Sendable {
    /// How the sink treats a connection.
    public enum Behaviour: String, Sendable {
        /// Completes the handshake, reads one request, answers `200 OK` and closes.
        case answer
        /// Reads the client's first TLS bytes (its ClientHello) and then waits for ``release()``
        /// before it completes the handshake and answers as ``answer`` does.
        case holdHandshake = "hold"
        /// Accepts the connection and never answers: a dead endpoint that keeps the client waiting.
        case silent
    }

    /// One request as the sink read it.
    public struct Request: Sendable, Hashable {
        /// The request target (`/hooks/x`).
        public let path: String
        /// The body.
        public let body: [UInt8]
    }

    /// The port on 127.0.0.1.
    public let port: Int
    /// The sink's certificate: the CA file that trusts it.
    public let certificate: String
    private let directory: String
    private let process: Process
    private let input: FileHandle
    private let log = Log()

    /// What the server printed, a line per event.
    private final class Log: Sendable {
        let lines = Mutex<[String]>([])
    }

    private func lines<T>(_ body: ([String]) -> T) -> T { log.lines.withLock { body($0) } }

    /// Makes the certificate and starts the server; returns once it listens.
    public init(_ behaviour: Behaviour) throws {
        directory = NSTemporaryDirectory() + "carehub-sink-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        certificate = directory + "/cert.pem"
        let key = directory + "/key.pem"
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", certificate,
        ]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else { throw SinkFailure(description: "openssl req failed") }

        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-u", "-c", Self.script, behaviour.rawValue, certificate, key]
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        input = stdin.fileHandleForWriting
        try process.run()
        let reader = stdout.fileHandleForReading
        guard let first = Self.readLine(reader), first.hasPrefix("port "), let port = Int(first.dropFirst(5)) else {
            process.terminate()
            throw SinkFailure(description: "the TLS sink did not start")
        }
        self.port = port
        let log = self.log
        Thread.detachNewThread {
            while let line = Self.readLine(reader) { log.lines.withLock { $0.append(line) } }
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Ends the server, closing every connection it holds (a silent sink's client then fails).
    public func stop() {
        try? input.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    /// Lets a ``Behaviour/holdHandshake`` sink answer the handshakes it holds, and later ones.
    public func release() {
        try? input.write(contentsOf: Data("release\n".utf8))
    }

    /// Connections accepted so far.
    public var accepted: Int { lines { $0.filter { $0.hasPrefix("accepted") }.count } }

    /// Requests read so far, in order.
    public var requests: [Request] {
        lines { lines in
            lines.compactMap { line -> Request? in
                let words = line.split(separator: " ", omittingEmptySubsequences: false)
                guard words.count == 3, words[0] == "request" else { return nil }
                return Request(path: String(words[1]), body: Array(Data(base64Encoded: String(words[2])) ?? Data()))
            }
        }
    }

    /// Handshakes that failed on the sink's side (the client gave up or refused the certificate).
    public var failedHandshakes: Int { lines { $0.filter { $0.hasPrefix("handshake-failed") }.count } }

    /// Waits until a client's ClientHello has arrived (at most ten seconds: a hang guard).
    public func waitForClientHello() async throws {
        try await wait("a ClientHello") { lines { $0.contains { $0.hasPrefix("hello") } } }
    }

    /// Waits until a connection has been accepted (at most ten seconds: a hang guard).
    public func waitForConnection() async throws {
        try await wait("a connection") { accepted > 0 }
    }

    /// Waits for the `count`th request (at most ten seconds: a hang guard) and returns it.
    public func request(_ count: Int = 1) async throws -> Request {
        try await wait("request \(count)") { requests.count >= count }
        return requests[count - 1]
    }

    private func wait(_ what: String, _ condition: () -> Bool) async throws {
        for _ in 0..<10_000 where !condition() { try await Task.sleep(for: .milliseconds(1)) }
        guard condition() else { throw SinkFailure(description: "the TLS sink never saw \(what)") }
    }

    private static func readLine(_ handle: FileHandle) -> String? {
        var bytes: [UInt8] = []
        while true {
            guard let byte = try? handle.read(upToCount: 1), let first = byte.first else {
                return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
            }
            if first == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(first)
        }
    }

    /// Why the sink could not start or what it never saw.
    public struct SinkFailure: Error, CustomStringConvertible {
        public let description: String
    }

    private static let script = #"""
        import base64, os, socket, ssl, sys, threading
        mode, certificate, key = sys.argv[1], sys.argv[2], sys.argv[3]
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        lock = threading.Lock()
        released = threading.Event()
        if mode != "hold":
            released.set()
        held = []

        def say(*words):
            with lock:
                print(*words, flush=True)

        def commands():
            for line in sys.stdin:
                if line.strip() == "release":
                    released.set()
            os._exit(0)

        def serve(connection, number):
            say("accepted", number)
            if mode == "silent":
                held.append(connection)
                return
            connection.recv(1, socket.MSG_PEEK)
            say("hello", number)
            released.wait()
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certificate, key)
            try:
                tls = context.wrap_socket(connection, server_side=True)
            except (ssl.SSLError, OSError):
                say("handshake-failed", number)
                connection.close()
                return
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = tls.recv(65536)
                if not chunk:
                    tls.close()
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(body) < length:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                body += chunk
            path = head.split(b" ")[1].decode()
            say("request", path, base64.b64encode(body).decode())
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            tls.close()

        threading.Thread(target=commands, daemon=True).start()
        say("port", listener.getsockname()[1])
        number = 0
        while True:
            connection, _ = listener.accept()
            number += 1
            threading.Thread(target=serve, args=(connection, number), daemon=True).start()
        """#
}
