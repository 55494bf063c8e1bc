@testable import CareHubTransport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The machine's addresses other than loopback (from getifaddrs), numeric.
func nonLoopbackAddresses() -> [String] {
    var list: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&list) == 0 else { return [] }
    defer { freeifaddrs(list) }
    var addresses: [String] = []
    var cursor = list
    while let entry = cursor {
        defer { cursor = entry.pointee.ifa_next }
        guard let address = entry.pointee.ifa_addr else { continue }
        let family = Int32(address.pointee.sa_family)
        guard family == AF_INET || family == AF_INET6 else { continue }
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let length = socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
        guard getnameinfo(address, length, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 else { continue }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // Link-local addresses need a scope to connect to; loopback is tested on its own.
        guard !text.hasPrefix("127."), text != "::1", !text.lowercased().hasPrefix("fe80") else { continue }
        addresses.append(text)
    }
    return addresses
}

/// True if a TCP connection to `host`:`port` is refused.
func connectionRefused(host: String, port: Int) -> Bool {
    do {
        _ = try RawWebSocketClient(port: port, host: host)
        return false
    } catch let failure as RawWebSocketClient.Failure {
        return failure.errno == ECONNREFUSED
    } catch {
        return false
    }
}

@Suite("listening address")
struct ListeningAddressTests {
    @Test func anIPv4BindAcceptsOnThatAddressAndRefusesEveryOther() throws {
        let harness = Harness { $0.host = "127.0.0.1" }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        #expect(harness.transport.listeningAddress == ListeningAddress(host: "127.0.0.1", port: port))
        #expect(try RawWebSocketClient(port: port, host: "127.0.0.1").upgrade().hasPrefix("HTTP/1.1 101"))
        // 127.0.0.2 is loopback too, but another address.
        for other in ["127.0.0.2", "::1"] + nonLoopbackAddresses() {
            #expect(connectionRefused(host: other, port: port), "\(other) reached a server bound to 127.0.0.1")
        }
    }

    @Test func anIPv6BindInBracketsAcceptsOnThatAddressOnly() throws {
        let harness = Harness { $0.host = "[::1]" }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        #expect(harness.transport.listeningAddress?.description == "[::1]:\(port)")
        #expect(try RawWebSocketClient(port: port, host: "::1").upgrade().hasPrefix("HTTP/1.1 101"))
        for other in ["127.0.0.1", "127.0.0.2"] + nonLoopbackAddresses() {
            #expect(connectionRefused(host: other, port: port), "\(other) reached a server bound to [::1]")
        }
    }

    @Test func aHostNameIsResolvedToOneAddressThatIsReported() throws {
        let harness = Harness { $0.host = "localhost" }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let address = try #require(harness.transport.listeningAddress)
        #expect(["127.0.0.1", "::1"].contains(address.host))
        #expect(try RawWebSocketClient(port: port, host: address.host).upgrade().hasPrefix("HTTP/1.1 101"))
        #expect(connectionRefused(host: address.isIPv6 ? "127.0.0.1" : "::1", port: port))
    }

    @Test func anUnknownHostIsAClearError() throws {
        let harness = Harness { $0.host = "no-such-host.invalid" }
        #expect(throws: TransportError.self) { try harness.transport.start() }
    }
}
