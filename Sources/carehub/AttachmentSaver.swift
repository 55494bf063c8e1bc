import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `/save` in `carehub console`: one blocking HTTP/1.1 GET of an attachment from the hub, on the
/// host and port the console's WebSocket uses, with the session's bearer token, streamed into a
/// new file that only its owner may read (mode 0600). An existing file is never overwritten, and a
/// download that fails leaves no file behind.
enum AttachmentSaver {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// How long the hub may keep the console waiting for the next bytes.
    static let timeoutSeconds = 30
    /// The most bytes an answer's head (status line and headers) or an error's body may take.
    static let headLimit = 64 * 1024

    /// Saves `path` (e.g. `/attachments/a_…?org=…`) from `host:port` to `destination`; returns the
    /// bytes written.
    static func save(host: String, port: Int, path: String, token: String, to destination: String) throws -> Int {
        let file = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard file >= 0 else {
            if errno == EEXIST { throw Failure(description: "\(destination) already exists; give a new file name") }
            throw Failure(description: "cannot create \(destination): \(String(cString: strerror(errno)))")
        }
        do {
            defer { close(file) }
            guard fchmod(file, 0o600) == 0 else { throw Failure(description: "cannot set the mode of \(destination): \(String(cString: strerror(errno)))") }
            let connection = try Connection(host: host, port: port)
            try connection.write("GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nAuthorization: Bearer \(token)\r\nAccept: */*\r\nConnection: close\r\n\r\n")
            let head = try connection.head()
            guard head.status == 200 else { throw Failure(description: refusal(head.status, body: connection.rest(limit: headLimit))) }
            var written = 0
            try connection.body(head) { bytes in
                try writeAll(bytes, to: file, destination)
                written += bytes.count
            }
            guard fsync(file) == 0 else { throw Failure(description: "cannot write \(destination): \(String(cString: strerror(errno)))") }
            return written
        } catch {
            unlink(destination)
            throw error
        }
    }

    private static func writeAll(_ bytes: ArraySlice<UInt8>, to file: Int32, _ destination: String) throws {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let count = bytes[offset...].withUnsafeBytes { write(file, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw Failure(description: "cannot write \(destination): \(String(cString: strerror(errno)))") }
            offset += count
        }
    }

    /// The hub's refusal in plain words, from its JSON `code` (or the status without one).
    static func refusal(_ status: Int, body: [UInt8]) -> String {
        let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        switch object?["code"] as? String {
        case "attachment_held": return "the file is still being checked for viruses; try again once it is ready"
        case "forbidden": return "you may not read this conversation's files"
        case "not_found": return "the file is no longer on the hub (the chat may have been erased)"
        case "auth_failed", "unauthenticated", "session_expired": return "your session has ended; run carehub console again"
        case "rate_limited": return "too many requests just now; try again in a moment"
        case "unavailable": return "the hub cannot send files just now; try again in a moment"
        default: return "the hub answered \(status)"
        }
    }

    /// The status and headers (names lower-cased) of an answer.
    struct Head {
        let status: Int
        let headers: [String: String]
    }

    /// A blocking TCP connection with what has been read and not yet consumed.
    private final class Connection {
        let fd: Int32
        private var buffer: [UInt8] = []
        private var atEnd = false

        init(host: String, port: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: "socket(): \(String(cString: strerror(errno)))") }
            var timeout = timeval(tv_sec: AttachmentSaver.timeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr(host)
            let status = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard status == 0 else {
                close(fd)
                throw Failure(description: "cannot reach the hub at \(host):\(port): \(String(cString: strerror(errno)))")
            }
        }

        deinit { close(fd) }

        func write(_ text: String) throws {
            let bytes = Array(text.utf8)
            var offset = 0
            while offset < bytes.count {
                let count = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { throw Failure(description: "the connection to the hub failed: \(String(cString: strerror(errno)))") }
                offset += count
            }
        }

        /// Reads more into the buffer; false at the end of the stream.
        private func fill() throws -> Bool {
            guard !atEnd else { return false }
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count < 0 && errno == EINTR { continue }
                if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { throw Failure(description: "the hub stopped sending") }
                guard count >= 0 else { throw Failure(description: "the connection to the hub failed: \(String(cString: strerror(errno)))") }
                if count == 0 { atEnd = true; return false }
                buffer += chunk[..<count]
                return true
            }
        }

        /// The bytes up to (not including) `marker`, consuming the marker too.
        private func until(_ marker: [UInt8], limit: Int) throws -> [UInt8] {
            while true {
                if let range = buffer.firstRange(of: marker) {
                    let found = Array(buffer[..<range.lowerBound])
                    buffer.removeSubrange(..<range.upperBound)
                    return found
                }
                guard buffer.count <= limit else { throw Failure(description: "the hub's answer was not understood") }
                guard try fill() else { throw Failure(description: "the hub closed the connection early") }
            }
        }

        /// Exactly `count` bytes, handed on as they arrive.
        private func exactly(_ count: Int, _ take: (ArraySlice<UInt8>) throws -> Void) throws {
            var left = count
            while left > 0 {
                if buffer.isEmpty { guard try fill() else { throw Failure(description: "the hub closed the connection before the end of the file") } }
                let piece = min(left, buffer.count)
                try take(buffer[..<piece])
                buffer.removeSubrange(..<piece)
                left -= piece
            }
        }

        func head() throws -> Head {
            let text = String(decoding: try until(Array("\r\n\r\n".utf8), limit: AttachmentSaver.headLimit), as: UTF8.self)
            var lines = text.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst().split(separator: " ")
            guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
                throw Failure(description: "the hub's answer was not understood")
            }
            var headers: [String: String] = [:]
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            return Head(status: status, headers: headers)
        }

        /// What is left of the stream, at most `limit` bytes (an error's body).
        func rest(limit: Int) -> [UInt8] {
            while buffer.count < limit, (try? fill()) == true {}
            return Array(buffer.prefix(limit))
        }

        /// The body: chunked, of a stated length, or up to the end of the stream.
        func body(_ head: Head, _ take: (ArraySlice<UInt8>) throws -> Void) throws {
            if head.headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
                while true {
                    let line = String(decoding: try until(Array("\r\n".utf8), limit: 1024), as: UTF8.self)
                    guard let size = Int(line.split(separator: ";").first?.trimmingCharacters(in: .whitespaces) ?? "", radix: 16), size >= 0 else {
                        throw Failure(description: "the hub's answer was not understood")
                    }
                    if size == 0 { return }
                    try exactly(size, take)
                    guard try until(Array("\r\n".utf8), limit: 2).isEmpty else { throw Failure(description: "the hub's answer was not understood") }
                }
            } else if let length = head.headers["content-length"] {
                guard let count = Int(length), count >= 0 else { throw Failure(description: "the hub's answer was not understood") }
                try exactly(count, take)
            } else {
                while true {
                    if !buffer.isEmpty { try take(buffer[...]); buffer.removeAll() }
                    guard try fill() else { return }
                }
            }
        }
    }
}
