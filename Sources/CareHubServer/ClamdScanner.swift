import CareHubCore
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The ``MalwareScanner`` port over ClamAV's daemon: each scan is one connection speaking clamd's
/// `INSTREAM` (the file's pieces as length-prefixed chunks, a zero-length chunk to end, then one
/// reply: `stream: OK`, `stream: NAME FOUND` or `… ERROR`).
///
/// The socket work blocks, so it runs on a pool of threads of its own, never on the cooperative
/// pool that carries messages; every send and receive is bounded by `timeout`, so a daemon that
/// stops answering fails the scan instead of holding it. Failures are ``ScannerUnavailable`` with
/// the daemon's address and what went wrong, never a byte of the file.
public struct ClamdScanner: MalwareScanner {
    /// Where the daemon listens.
    public let address: ScannerAddress
    /// The longest wait for one send, one receive or the verdict.
    public let timeout: Duration

    /// The threads every scan's socket work runs on, for the process's life.
    static let pool = BlockingPool(name: "carehub-clamd", threads: 4, queueLimit: 256)
    /// The largest chunk sent at once (clamd reads each into memory).
    static let largestChunk = 1 << 20

    /// A scanner of the daemon at `address`.
    public init(address: ScannerAddress, timeout: Duration = .seconds(30)) {
        self.address = address
        self.timeout = timeout
    }

    /// Connects to the daemon and starts an `INSTREAM`; throws ``ScannerUnavailable`` when the
    /// daemon cannot be reached within `timeout`.
    public func begin() async throws -> any MalwareScan {
        let address = address
        let timeout = timeout
        let connection = try await Self.blocking(address) {
            let connection = try ClamdConnection.open(address, timeout: timeout)
            do {
                try connection.send(Array("zINSTREAM\0".utf8))
            } catch {
                connection.close()
                throw error
            }
            return connection
        }
        return ClamdScan(connection: connection, address: address)
    }

    /// Runs socket work on the pool; a full pool is the scanner being unavailable too.
    static func blocking<T: Sendable>(_ address: ScannerAddress, _ work: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await pool.run(work)
        } catch is BlockingPool.Full {
            throw ScannerUnavailable("too many scans are waiting for clamd at \(address)")
        }
    }
}

/// One file on its way to clamd.
final class ClamdScan: MalwareScan {
    private let connection: ClamdConnection
    private let address: ScannerAddress

    init(connection: ClamdConnection, address: ScannerAddress) {
        self.connection = connection
        self.address = address
    }

    func feed(_ bytes: [UInt8]) async throws {
        guard !bytes.isEmpty else { return }
        let connection = connection
        let address = address
        try await ClamdScanner.blocking(address) {
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + ClamdScanner.largestChunk)
                let count = UInt32(end - offset)
                do {
                    // The length, then the piece itself: the bytes are sent from where they are, not copied.
                    try connection.send([UInt8(count >> 24), UInt8((count >> 16) & 0xFF), UInt8((count >> 8) & 0xFF), UInt8(count & 0xFF)])
                    try connection.send(bytes[offset..<end])
                } catch {
                    // clamd answers and hangs up when the stream passes its limit: say why if it did.
                    defer { connection.close() }
                    if let reply = connection.pendingReply() { throw ClamdReply.failure(reply, address: address) }
                    throw error
                }
                offset = end
            }
        }
    }

    func finish() async throws -> ScanVerdict {
        let connection = connection
        let address = address
        return try await ClamdScanner.blocking(address) {
            defer { connection.close() }
            do {
                try connection.send([0, 0, 0, 0])
            } catch {
                if let reply = connection.pendingReply() { return try ClamdReply.verdict(reply, address: address) }
                throw error
            }
            return try ClamdReply.verdict(try connection.reply(), address: address)
        }
    }

    func cancel() async { connection.close() }
}

/// What clamd's reply to `INSTREAM` means.
enum ClamdReply {
    static func verdict(_ reply: String, address: ScannerAddress) throws -> ScanVerdict {
        if reply == "stream: OK" { return .clean }
        if reply.hasPrefix("stream: "), reply.hasSuffix(" FOUND") {
            let name = reply.dropFirst("stream: ".count).dropLast(" FOUND".count)
            if !name.isEmpty { return .infected(signature: String(name)) }
        }
        throw failure(reply, address: address)
    }

    static func failure(_ reply: String, address: ScannerAddress) -> ScannerUnavailable {
        if reply.contains("size limit exceeded") {
            return ScannerUnavailable(
                "clamd at \(address) refused the file as larger than its StreamMaxLength; raise StreamMaxLength to at least the organisations' attachments max_size")
        }
        if reply.hasSuffix("ERROR") {
            return ScannerUnavailable("clamd at \(address) failed: \(printable(reply))")
        }
        return ScannerUnavailable("clamd at \(address) answered something that is not a verdict")
    }

    /// The daemon's words, as a log may carry them.
    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(200).map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? $0 : "?" }))
    }
}

/// One socket to clamd, with every send and receive bounded in time. Used by one scan, whose
/// steps come one after another; ``close()`` may come from anywhere, at any time.
final class ClamdConnection: Sendable {
    private let descriptor: Mutex<Int32>
    private let address: ScannerAddress

    private init(descriptor: Int32, address: ScannerAddress) {
        self.descriptor = Mutex(descriptor)
        self.address = address
    }

    deinit { close() }

    /// Connects to `address`, with `timeout` on connecting, each send and each receive.
    static func open(_ address: ScannerAddress, timeout: Duration) throws -> ClamdConnection {
        switch address {
        case .unix(let path):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw ScannerUnavailable("cannot make a socket for clamd at \(address): \(errorText())") }
            setTimeouts(fd, timeout)
            var socketAddress = sockaddr_un()
            socketAddress.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: socketAddress.sun_path) else {
                Glibc.close(fd)
                throw ScannerUnavailable("the socket path \(address) is too long")
            }
            withUnsafeMutableBytes(of: &socketAddress.sun_path) { $0.copyBytes(from: bytes) }
            let connected = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard connected == 0 else {
                let reason = errorText()
                Glibc.close(fd)
                throw ScannerUnavailable("cannot reach clamd at \(address): \(reason)")
            }
            return ClamdConnection(descriptor: fd, address: address)
        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_flags = AI_NUMERICSERV
            var found: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, String(port), &hints, &found)
            guard status == 0, let first = found else {
                throw ScannerUnavailable("cannot resolve clamd's host in \(address): \(String(cString: gai_strerror(status)))")
            }
            defer { freeaddrinfo(first) }
            var reason = "no address"
            var next: UnsafeMutablePointer<addrinfo>? = first
            while let entry = next {
                next = entry.pointee.ai_next
                let fd = socket(entry.pointee.ai_family, entry.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), entry.pointee.ai_protocol)
                guard fd >= 0 else { continue }
                setTimeouts(fd, timeout)
                if connect(fd, entry.pointee.ai_addr, entry.pointee.ai_addrlen) == 0 {
                    return ClamdConnection(descriptor: fd, address: address)
                }
                reason = errorText()
                Glibc.close(fd)
            }
            throw ScannerUnavailable("cannot reach clamd at \(address): \(reason)")
        }
    }

    /// Sends all of `bytes`.
    func send(_ bytes: [UInt8]) throws { try send(bytes[...]) }

    /// Sends all of `bytes`.
    func send(_ bytes: ArraySlice<UInt8>) throws {
        let fd = descriptor.withLock { $0 }
        guard fd >= 0 else { throw ScannerUnavailable("the scan of clamd at \(address) was closed") }
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else {
                let timedOut = errno == EAGAIN || errno == EWOULDBLOCK
                throw ScannerUnavailable(timedOut ? "clamd at \(address) stopped taking the file" : "lost clamd at \(address): \(Self.errorText())")
            }
            offset += sent
        }
    }

    /// Reads the reply, up to its terminating zero (or the connection's end).
    func reply() throws -> String {
        let fd = descriptor.withLock { $0 }
        guard fd >= 0 else { throw ScannerUnavailable("the scan of clamd at \(address) was closed") }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        while reply.count < 4096 {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 {
                let timedOut = errno == EAGAIN || errno == EWOULDBLOCK
                throw ScannerUnavailable(timedOut ? "clamd at \(address) gave no verdict in time" : "lost clamd at \(address): \(Self.errorText())")
            }
            if count == 0 { break }
            reply += buffer[0..<count]
            if let end = reply.firstIndex(of: 0) {
                reply.removeSubrange(end...)
                return String(decoding: reply, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
        guard !reply.isEmpty else { throw ScannerUnavailable("clamd at \(address) closed the connection without a verdict") }
        return String(decoding: reply, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A reply clamd sent before it stopped reading (a limit passed), if one arrives within a second.
    func pendingReply() -> String? {
        let fd = descriptor.withLock { $0 }
        guard fd >= 0 else { return nil }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 1000) > 0 else { return nil }
        return try? reply()
    }

    /// Closes the socket; later calls do nothing.
    func close() {
        let fd = descriptor.withLock { fd in
            defer { fd = -1 }
            return fd
        }
        if fd >= 0 { Glibc.close(fd) }
    }

    private static func setTimeouts(_ fd: Int32, _ timeout: Duration) {
        // A zero timeval means no timeout at all: the shortest wait is a millisecond.
        let (seconds, attoseconds) = max(timeout, .milliseconds(1)).components
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}
