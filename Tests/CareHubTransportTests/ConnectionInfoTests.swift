@testable import CareHubTransport
import Foundation
import Synchronization
import Testing

@Suite("connection facts and admission", .serialized)
struct ConnectionInfoTests {
    func openedInfo(_ harness: Harness) -> ConnectionInfo? {
        harness.eventKinds().compactMap { if case .opened(let info) = $0 { info } else { nil } }.first
    }

    @Test func openedCarriesThePeerAndTheRequestHeaders() throws {
        let harness = Harness()
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let client = try RawWebSocketClient(port: port)
        let head = try client.upgrade(headers: [
            "Origin: https://clinic.example", "X-Forwarded-For: 203.0.113.9, 10.0.0.1", "X-Forwarded-Proto: https",
        ])
        #expect(head.hasPrefix("HTTP/1.1 101"))
        #expect(harness.wait { $0.count == 1 })
        #expect(openedInfo(harness) == ConnectionInfo(
            peer: "127.0.0.1", origin: "https://clinic.example", host: "127.0.0.1",
            forwardedFor: "203.0.113.9, 10.0.0.1", forwardedProto: "https", tls: false))
    }

    @Test func absentHeadersAreNil() throws {
        let harness = Harness()
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let client = try RawWebSocketClient(port: port)
        #expect(try client.upgrade().hasPrefix("HTTP/1.1 101"))
        #expect(harness.wait { $0.count == 1 })
        #expect(openedInfo(harness) == ConnectionInfo(peer: "127.0.0.1", host: "127.0.0.1"))
    }

    @Test func aRefusedUpgradeIsTooManyRequestsAndReportsNothing() throws {
        let seen = Mutex<[ConnectionInfo]>([])
        let harness = Harness {
            $0.admit = { info in
                seen.withLock { $0.append(info) }
                return info.origin == "https://clinic.example"
            }
        }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let refused = try RawWebSocketClient(port: port)
        let head = try? refused.upgrade(headers: ["Origin: https://elsewhere.example"])
        // lws answers a refused upgrade in HTTP/1.0.
        #expect(head?.hasPrefix("HTTP/1.") == true && head?.contains(" 429 ") == true, "answered \(head ?? "nothing")")
        #expect(refused.isClosedByServer())
        #expect(harness.eventKinds().isEmpty)
        #expect(seen.withLock { $0.map(\.origin) } == ["https://elsewhere.example"])

        let admitted = try RawWebSocketClient(port: port)
        #expect(try admitted.upgrade(headers: ["Origin: https://clinic.example"]).hasPrefix("HTTP/1.1 101"))
        try admitted.send(text: "in")
        #expect(try admitted.receive() == .text("echo:in"))
        #expect(seen.withLock { $0.count } == 2)
    }

    @Test func aHeaderLongerThanOneKibibyteRefusesTheUpgrade() throws {
        let admitted = Mutex(0)
        let harness = Harness { $0.admit = { _ in admitted.withLock { $0 += 1 }; return true } }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        for header in ["Origin: https://" + String(repeating: "a", count: 1100),
                       "X-Forwarded-For: " + String(repeating: "1", count: 1100),
                       "X-Forwarded-Proto: " + String(repeating: "h", count: 1100)] {
            let head = try? RawWebSocketClient(port: port).upgrade(headers: [header])
            #expect(head?.hasPrefix("HTTP/1.1 101") != true, "\(header.prefix(20)) was admitted")
        }
        // Exactly the cap is accepted.
        let longest = "https://" + String(repeating: "a", count: ConnectionInfo.maxHeaderBytes - 8)
        #expect(try RawWebSocketClient(port: port).upgrade(headers: ["Origin: \(longest)"]).hasPrefix("HTTP/1.1 101"))
        #expect(harness.wait { !$0.isEmpty })
        #expect(openedInfo(harness)?.origin == longest)
        #expect(admitted.withLock { $0 } == 1)
    }
}
