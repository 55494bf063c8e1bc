import CareHubTransport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension WebSocketClient {
    /// Waits (blocking, up to `timeout` seconds) for a text frame whose JSON has one of `types`.
    func await(_ types: Set<String>, timeout: Double = 10) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            while let text = nextText() {
                if let object = Bench.json(text), let type = object["type"] as? String, types.contains(type) { return object }
            }
            var pollfd = Glibc.pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&pollfd, 1, 50)
            guard try fill() else { throw WebSocketClient.Failure(description: "connection closed while waiting for \(types.sorted())") }
        }
        throw WebSocketClient.Failure(description: "no \(types.sorted()) within \(timeout) s")
    }
}
