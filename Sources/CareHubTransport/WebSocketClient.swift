import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A client WebSocket (RFC 6455) on a plain TCP socket, for tools (the benchmark, consoles): a
/// blocking handshake, then non-blocking frames the caller drives with `poll` or `epoll` on ``fd``.
///
/// Reading with ``nextText()`` also keeps the connection alive: a ping is answered with a masked
/// pong of the same payload, a close is answered with a close and reported in ``closeCode``, and
/// fragmented text messages are joined. A caller that may stay quiet should call
/// ``keepAlive(now:)`` at least every ``keepAliveInterval``: the server hangs up on a connection
/// that neither answers its pings nor sends anything.
public final class WebSocketClient {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// The socket, for the caller's `poll` or `epoll`.
    public let fd: Int32
    private var input: [UInt8] = []
    private var start = 0
    /// A text message whose first fragments have arrived (nil when none is open).
    private var fragments: [UInt8]?
    /// True while the open fragmented message is binary (its bytes are not kept).
    private var fragmentsAreBinary = false
    private var lastSent = ContinuousClock.now

    /// The status code of the server's close frame, once one arrived (1005 if it had none).
    /// Nothing is read after it.
    public private(set) var closeCode: UInt16?
    /// How long the connection may go without a frame from this client before
    /// ``keepAlive(now:)`` sends a ping.
    public var keepAliveInterval: Duration = .seconds(30)
    /// Pongs received (answers to ``sendPing(_:)`` and ``keepAlive(now:)``).
    public private(set) var pongCount = 0

    public init(host: String, port: Int, path: String = "/ws") throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket(): \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard status == 0 else {
            close(fd)
            throw Failure(description: "connect to \(host):\(port): \(String(cString: strerror(errno)))")
        }
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        try writeAll(Array("GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n".utf8))
        let end = Array("\r\n\r\n".utf8)
        while input.firstRange(of: end) == nil {
            guard try fill(blocking: true) else { throw Failure(description: "handshake: connection closed") }
        }
        let range = input.firstRange(of: end)!
        let head = String(decoding: input[..<range.lowerBound], as: UTF8.self)
        guard head.hasPrefix("HTTP/1.1 101") else { throw Failure(description: "handshake refused: \(head.prefix(40))") }
        input.removeFirst(range.upperBound)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    deinit { close(fd) }

    /// Sends a text frame (masked, as a client must).
    public func send(_ text: String) throws {
        try sendFrame(opcode: 0x1, payload: Array(text.utf8))
    }

    /// Sends a ping; the server's pong is counted in ``pongCount``.
    public func sendPing(_ payload: [UInt8] = []) throws {
        try sendFrame(opcode: 0x9, payload: Array(payload.prefix(125)))
    }

    /// Sends a ping if nothing was sent for ``keepAliveInterval``.
    public func keepAlive(now: ContinuousClock.Instant = .now) throws {
        guard closeCode == nil, now - lastSent >= keepAliveInterval else { return }
        try sendPing()
    }

    /// Sends one final frame, masked.
    private func sendFrame(opcode: UInt8, payload: [UInt8]) throws {
        var frame: [UInt8] = [0x80 | opcode]
        frame.reserveCapacity(payload.count + 14)
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65536 {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((UInt64(payload.count) >> UInt64(shift)) & 0xFF)) }
        }
        // One draw from the system generator per frame (a draw is a system call).
        let key = UInt32.random(in: .min ... .max)
        let mask = (0..<4).map { UInt8(truncatingIfNeeded: key >> (8 * $0)) }
        frame += mask
        for (index, byte) in payload.enumerated() { frame.append(byte ^ mask[index & 3]) }
        try writeAll(frame)
        lastSent = .now
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent > 0 {
                offset += sent
            } else if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                var pollfd = Glibc.pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&pollfd, 1, 100)
            } else {
                throw Failure(description: "send(): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Reads what is available; false when the server closed the connection.
    @discardableResult
    public func fill(blocking: Bool = false) throws -> Bool {
        // An uninitialised scratch buffer: no zero-fill per read, and no 64 KiB kept per client
        // (the bench holds 10,000 of them).
        let count = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 65536) { chunk in
            let count = recv(fd, chunk.baseAddress, chunk.count, 0)
            if count > 0 {
                if start > 0 && start == input.count {
                    input.removeAll(keepingCapacity: true)
                    start = 0
                }
                input.append(contentsOf: chunk[..<count])
            }
            return count
        }
        if count > 0 { return true }
        if count == 0 { return false }
        if errno == EAGAIN || errno == EWOULDBLOCK { return true }
        throw Failure(description: "recv(): \(String(cString: strerror(errno)))")
    }

    /// The next complete text message already received, if any. Control frames met on the way
    /// are handled: pings answered, pongs counted, a close answered and recorded in ``closeCode``
    /// (after which this returns nil). A failed answer is left for the next ``fill(blocking:)``
    /// to report.
    public func nextText() -> String? {
        while closeCode == nil {
            let available = input.count - start
            guard available >= 2 else { return nil }
            let first = input[start], second = input[start + 1]
            let fin = first & 0x80 != 0
            let opcode = first & 0x0F
            let masked = second & 0x80 != 0
            var length = Int(second & 0x7F)
            var header = 2
            if length == 126 {
                guard available >= 4 else { return nil }
                length = Int(input[start + 2]) << 8 | Int(input[start + 3])
                header = 4
            } else if length == 127 {
                guard available >= 10 else { return nil }
                length = (0..<8).reduce(0) { $0 << 8 | Int(input[start + 2 + $1]) }
                header = 10
            }
            if masked { header += 4 }
            guard available >= header + length else { return nil }
            let range = (start + header)..<(start + header + length)
            if opcode == 0x1 && fin && !masked {
                // The common case, decoded in place.
                let text = String(decoding: input[range], as: UTF8.self)
                consume(header + length)
                return text
            }
            var payload = Array(input[range])
            if masked {
                // Servers do not mask (RFC 6455 5.1); unmask anyway rather than misread.
                let key = Array(input[(range.lowerBound - 4)..<range.lowerBound])
                for index in payload.indices { payload[index] ^= key[index & 3] }
            }
            consume(header + length)
            switch opcode {
            case 0x1 where fin:
                return String(decoding: payload, as: UTF8.self)
            case 0x1:
                fragments = payload
                fragmentsAreBinary = false
            case 0x2:
                fragments = fin ? nil : []
                fragmentsAreBinary = !fin
            case 0x0:
                guard fragments != nil else { continue }
                if !fragmentsAreBinary { fragments?.append(contentsOf: payload) }
                if fin {
                    let message = fragments
                    fragments = nil
                    if !fragmentsAreBinary, let message { return String(decoding: message, as: UTF8.self) }
                }
            case 0x8:
                let code = payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : 1005
                closeCode = code
                // Echo the status code, as RFC 6455 5.5.1 asks; 1005 is never sent on the wire.
                try? sendFrame(opcode: 0x8, payload: code == 1005 ? [] : Array(payload.prefix(2)))
            case 0x9:
                try? sendFrame(opcode: 0xA, payload: payload)
            case 0xA:
                pongCount += 1
            default:
                continue
            }
        }
        return nil
    }

    /// Drops `count` read bytes, compacting the buffer now and then.
    private func consume(_ count: Int) {
        start += count
        if start > 1 << 20 {
            input.removeFirst(start)
            start = 0
        }
    }
}
