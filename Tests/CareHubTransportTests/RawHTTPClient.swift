import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 client over one blocking socket (keep-alive: several requests in turn), so
/// the HTTP layer is tested against bytes on a real TCP connection.
final class RawHTTPClient: BufferedSocketReading {
    struct Response {
        let status: Int
        let head: String
        let headers: [(name: String, value: String)]
        let body: [UInt8]

        /// The first value of `name`, any case.
        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    let fd: Int32
    var buffer: [UInt8] = []

    /// Connects to 127.0.0.1:`port`; reads give up after `timeout` seconds instead of hanging.
    init(port: Int, timeout: Int = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawWebSocketClient.Failure(description: "socket() failed") }
        var time = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw RawWebSocketClient.Failure(description: "connect() failed: \(errno)")
        }
    }

    deinit { close(fd) }

    /// Sends one request and reads its response. `headers` are "Name: value" lines; a body gets
    /// its Content-Length unless `headers` already says one.
    func request(_ method: String = "GET", _ target: String, headers: [String] = [], body: [UInt8] = []) throws -> Response {
        try send(method, target, headers: headers, body: body)
        return try response(to: method)
    }

    /// Sends a request head (and `body`, which may be only its start) without reading.
    func send(_ method: String = "GET", _ target: String, headers: [String] = [], body: [UInt8] = []) throws {
        var lines = ["\(method) \(target) HTTP/1.1", "Host: 127.0.0.1"] + headers
        if !body.isEmpty && !headers.contains(where: { $0.lowercased().hasPrefix("content-length:") }) {
            lines.append("Content-Length: \(body.count)")
        }
        try write(Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8) + body)
    }

    /// Reads the next response (a HEAD's has no body whatever its Content-Length says).
    func response(to method: String = "GET") throws -> Response {
        let head = try readHead()
        let lines = head.components(separatedBy: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        let headers = lines.dropFirst().compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let length = headers.first { $0.name.lowercased() == "content-length" }.flatMap { Int($0.value) } ?? 0
        let body = method == "HEAD" || status == 304 ? [] : try read(length)
        return Response(status: status, head: head, headers: headers, body: body)
    }

    func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw RawWebSocketClient.Failure(description: "send() failed: \(errno)", errno: errno) }
            offset += sent
        }
    }

    /// Everything the server sends until it closes the connection; `closed` is false when reads
    /// timed out instead.
    func readToEnd() -> (bytes: [UInt8], closed: Bool) {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count > 0 {
                buffer += chunk[..<count]
                continue
            }
            defer { buffer = [] }
            return (buffer, count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
        }
    }

    /// True once the server has closed the connection (end of stream or reset), having sent
    /// nothing more.
    func isClosedByServer() -> Bool {
        guard buffer.isEmpty else { return false }
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, 0)
        return count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    }
}
