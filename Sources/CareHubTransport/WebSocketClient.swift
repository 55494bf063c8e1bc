import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A client WebSocket (RFC 6455) on a plain TCP socket, for tools (the benchmark, consoles): a
/// blocking handshake, then non-blocking frames the caller drives with `poll` or `epoll` on ``fd``.
public final class WebSocketClient {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// The socket, for the caller's `poll` or `epoll`.
    public let fd: Int32
    private var input: [UInt8] = []
    private var start = 0

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
        let payload = Array(text.utf8)
        var frame: [UInt8] = [0x81]
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

    /// The next complete text frame already received, if any.
    public func nextText() -> String? {
        while true {
            let available = input.count - start
            guard available >= 2 else { return nil }
            let opcode = input[start] & 0x0F
            var length = Int(input[start + 1] & 0x7F)
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
            guard available >= header + length else { return nil }
            let payload = input[(start + header)..<(start + header + length)]
            start += header + length
            if start > 1 << 20 {
                input.removeFirst(start)
                start = 0
            }
            if opcode == 0x1 { return String(decoding: payload, as: UTF8.self) }
            // Pings, pongs and closes carry nothing the bench counts.
        }
    }
}
