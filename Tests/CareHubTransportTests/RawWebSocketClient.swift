import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A deliberately small RFC 6455 client over a blocking socket, so the transport is tested
/// against bytes on a real TCP connection rather than against itself.
final class RawWebSocketClient: BufferedSocketReading {
    struct Failure: Error, CustomStringConvertible {
        let description: String
        /// The `errno` of a failed system call, if one failed.
        var errno: Int32? = nil
    }

    enum Frame: Equatable {
        case text(String)
        case binary([UInt8])
        case close(code: UInt16, reason: String = "")
    }

    let fd: Int32
    var buffer: [UInt8] = []

    /// Connects to `host` (a numeric IPv4 or IPv6 address):`port`; reads give up after `timeout`
    /// seconds instead of hanging.
    init(port: Int, host: String = "127.0.0.1", timeout: Int = 10) throws {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let address = list else {
            throw Failure(description: "not a numeric address: \(host)")
        }
        defer { freeaddrinfo(list) }
        fd = socket(address.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed") }
        var time = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 else {
            let error = errno
            close(fd)
            throw Failure(description: "connect() failed: \(error)", errno: error)
        }
    }

    deinit { close(fd) }

    /// Sends a WebSocket upgrade for `path`, with `headers` ("Name: value" lines) after the
    /// usual ones, and returns the response head.
    @discardableResult
    func upgrade(path: String = "/ws", headers: [String] = []) throws -> String {
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let extra = headers.map { $0 + "\r\n" }.joined()
        try write(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\(extra)\r\n".utf8))
        return try readHead()
    }

    /// A plain HTTP GET; returns the whole response as text (the server closes or sends Content-Length).
    func get(_ path: String) throws -> (head: String, body: String) {
        try write(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8))
        let head = try readHead()
        let length = head.split(separator: "\r\n")
            .first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        return (head, String(decoding: try read(length), as: UTF8.self))
    }

    func send(text: String) throws { try sendFrame(opcode: 0x1, payload: Array(text.utf8), fin: true) }
    func send(binary: [UInt8]) throws { try sendFrame(opcode: 0x2, payload: binary, fin: true) }

    /// Sends `parts` as one message in several fragments.
    func send(fragments parts: [String]) throws {
        for (index, part) in parts.enumerated() {
            try sendFrame(opcode: index == 0 ? 0x1 : 0x0, payload: Array(part.utf8), fin: index == parts.count - 1)
        }
    }

    func sendFrame(opcode: UInt8, payload: [UInt8], fin: Bool) throws {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        switch payload.count {
        case ..<126: frame.append(0x80 | UInt8(payload.count))
        case ..<65536: frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default:
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((UInt64(payload.count) >> UInt64(shift)) & 0xFF)) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try write(frame)
    }

    /// The next complete frame from the server.
    func receive() throws -> Frame {
        let header = try read(2)
        let opcode = header[0] & 0x0F
        var length = Int(header[1] & 0x7F)
        if length == 126 {
            let extended = try read(2)
            length = Int(extended[0]) << 8 | Int(extended[1])
        } else if length == 127 {
            length = try read(8).reduce(0) { $0 << 8 | Int($1) }
        }
        let payload = try read(length)
        switch opcode {
        case 0x1: return .text(String(decoding: payload, as: UTF8.self))
        case 0x2: return .binary(payload)
        case 0x8:
            return .close(
                code: payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : 1005,
                reason: String(decoding: payload.dropFirst(2), as: UTF8.self))
        default: throw Failure(description: "unexpected opcode \(opcode)")
        }
    }

    /// True once the server has closed the TCP connection.
    func isClosedByServer() -> Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0
    }

    private func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw Failure(description: "send() failed: \(errno)") }
            offset += sent
        }
    }
}
