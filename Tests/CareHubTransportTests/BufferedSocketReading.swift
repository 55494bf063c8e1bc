import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The buffered reads of the raw test clients, over one blocking socket: whole byte counts, and
/// an HTTP head up to its blank line.
protocol BufferedSocketReading: AnyObject {
    var fd: Int32 { get }
    /// Bytes read from the socket and not yet taken.
    var buffer: [UInt8] { get set }
}

extension BufferedSocketReading {
    func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = recv(fd, &chunk, chunk.count, 0)
        guard count > 0 else { throw RawWebSocketClient.Failure(description: count == 0 ? "connection closed" : "recv() failed: \(errno)") }
        buffer += chunk[..<count]
    }

    func read(_ count: Int) throws -> [UInt8] {
        while buffer.count < count { try fill() }
        defer { buffer.removeFirst(count) }
        return Array(buffer[..<count])
    }

    func readHead() throws -> String {
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        while true {
            if let range = buffer.firstRange(of: end) {
                let head = String(decoding: buffer[..<range.lowerBound], as: UTF8.self)
                buffer.removeFirst(range.upperBound)
                return head
            }
            try fill()
        }
    }
}
