import CareHubTransport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The attachment scenario: a visitor uploads a file of `bytes` bytes into its chat over HTTP
/// (sealed, scanned and stored as the organisation's pipeline says) and downloads it again,
/// `repeats` times, against `cat` reading the same file from disk.
struct AttachmentThroughput {
    let host: String
    let port: Int
    let org: String
    let bytes: Int
    let repeats: Int

    func report(target: String) throws -> [String: Any] {
        let socket = try WebSocketClient(host: host, port: port)
        try socket.send(#"{"type":"hello","org":"\#(org)","id":"a"}"#)
        let welcome = try socket.await(["welcome", "error"])
        guard let room = welcome["conversation"] as? String, let token = welcome["token"] as? String else {
            throw WebSocketClient.Failure(description: "hello refused: \(welcome)")
        }
        // A PNG's signature, then bytes that do not compress.
        var file: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]
        var generator = SystemRandomNumberGenerator()
        file += (0..<max(0, bytes - file.count)).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("carehub-bench-\(getpid()).png").path
        FileManager.default.createFile(atPath: path, contents: Data(file))
        defer { unlink(path) }

        var uploads: [Double] = []
        var downloads: [Double] = []
        var cats: [Double] = []
        var states: [String: Int] = [:]
        for _ in 0..<repeats {
            var started = DispatchTime.now()
            let query = "org=\(org)&room=\(room)"
            let (status, body) = try HTTPExchange(host: host, port: port).send(
                "POST /attachments?\(query) HTTP/1.1\r\nHost: \(host)\r\nAuthorization: Bearer \(token)\r\nX-Filename: bench.png\r\n"
                    + "Content-Length: \(file.count)\r\nConnection: close\r\n\r\n", body: file)
            uploads.append(seconds(since: started))
            guard status == 201, let answer = Bench.json(String(decoding: body, as: UTF8.self)),
                  let attachment = answer["attachment"] as? [String: Any], let id = attachment["id"] as? String else {
                throw WebSocketClient.Failure(description: "upload answered \(status): \(String(decoding: body.prefix(300), as: UTF8.self))")
            }
            states[attachment["state"] as? String ?? "?", default: 0] += 1
            started = DispatchTime.now()
            let (got, data) = try HTTPExchange(host: host, port: port).send(
                "GET /attachments/\(id)?org=\(org) HTTP/1.1\r\nHost: \(host)\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n\r\n", body: [])
            downloads.append(seconds(since: started))
            guard got == 200, data == file else {
                throw WebSocketClient.Failure(description: "download answered \(got) with \(data.count) of \(file.count) bytes")
            }
            started = DispatchTime.now()
            try Self.cat(path)
            cats.append(seconds(since: started))
        }
        let megabytes = Double(file.count) / 1_000_000
        func rate(_ times: [Double]) -> Double { megabytes / median(times) }
        return [
            "target": target, "scenario": "attachment", "org": org, "bytes": file.count, "repeats": repeats, "states": states,
            "upload_ms_median": median(uploads) * 1000, "download_ms_median": median(downloads) * 1000, "cat_ms_median": median(cats) * 1000,
            "upload_mb_per_s": rate(uploads), "download_mb_per_s": rate(downloads), "cat_mb_per_s": rate(cats),
            "upload_vs_cat": median(uploads) / median(cats), "download_vs_cat": median(downloads) / median(cats),
        ]
    }

    /// Runs `cat PATH >/dev/null` and waits for it, as a shell would (posix_spawn and waitpid:
    /// Foundation's Process polls for the child's end and would add tens of milliseconds).
    static func cat(_ path: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        let arguments: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/cat"), strdup(path), nil]
        defer { arguments.forEach { free($0) } }
        guard posix_spawn(&pid, "/bin/cat", &actions, nil, arguments, environ) == 0 else {
            throw WebSocketClient.Failure(description: "cannot run /bin/cat")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { throw WebSocketClient.Failure(description: "cat failed with status \(status)") }
    }

    private func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }
}

/// One HTTP/1.1 request on a connection of its own: the head and body written, the answer read
/// to its `Content-Length`.
struct HTTPExchange {
    let host: String
    let port: Int

    func send(_ head: String, body: [UInt8]) throws -> (status: Int, body: [UInt8]) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WebSocketClient.Failure(description: "socket: \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw WebSocketClient.Failure(description: "an IPv4 address is needed: \(host)") }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw WebSocketClient.Failure(description: "connect: \(errno)") }
        try write(fd, Array(head.utf8))
        try write(fd, body)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        var headEnd: Int?
        var length: Int?
        while true {
            if let end = headEnd, let length, received.count - end >= length { break }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            received += buffer[0..<count]
            if headEnd == nil, let range = received.firstRange(of: [13, 10, 13, 10]) {
                headEnd = range.upperBound
                let text = String(decoding: received[..<range.lowerBound], as: UTF8.self).lowercased()
                length = text.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) }
            }
        }
        guard let end = headEnd else { throw WebSocketClient.Failure(description: "no HTTP answer") }
        let statusLine = String(decoding: received[..<end], as: UTF8.self).split(separator: " ")
        let status = statusLine.count > 1 ? Int(statusLine[1]) ?? 0 : 0
        return (status, Array(received[end...]))
    }

    private func write(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw WebSocketClient.Failure(description: "send: \(errno)") }
            offset += sent
        }
    }
}
