import CareHubCore
@testable import CareHubServer
import Testing

/// Who is at the other end: forwarded headers count only from a listed proxy.
@Suite("Client address behind proxies")
struct ClientAddressTests {
    let proxies = [CIDRBlock("10.0.0.0/8")!, CIDRBlock("127.0.0.1/32")!]

    func resolve(_ peer: String, xff: String? = nil, proto: String? = nil, tls: Bool = false, list: [CIDRBlock]? = nil) -> ClientAddress {
        ClientAddress(peer: peer, forwardedFor: xff, forwardedProto: proto, tls: tls, origin: nil, host: "chat.example", trustedProxies: list ?? proxies)
    }

    @Test func headersFromAStrangerAreIgnored() {
        let client = resolve("203.0.113.9", xff: "198.51.100.1", proto: "https")
        #expect(client.address == "203.0.113.9")
        #expect(!client.channel.secure, "a stranger cannot claim TLS it did not use")
    }

    @Test func aListedProxyForwardsTheClientAndWhetherItUsedTLS() {
        let client = resolve("10.1.2.3", xff: "198.51.100.7", proto: "https")
        #expect(client.address == "198.51.100.7")
        #expect(client.channel.secure)
        #expect(client.channel.ownOrigin == "https://chat.example")
        #expect(!resolve("10.1.2.3", xff: "198.51.100.7", proto: "http").channel.secure)
        #expect(!resolve("10.1.2.3", xff: "198.51.100.7").channel.secure)
    }

    @Test func theClientIsTheLastHopNoListedProxyOwns() {
        // A client may send its own X-Forwarded-For; only the hops the proxies appended count.
        #expect(resolve("10.1.2.3", xff: "1.2.3.4, 198.51.100.7, 10.9.9.9").address == "198.51.100.7")
        #expect(resolve("10.1.2.3", xff: "garbage, 198.51.100.7").address == "198.51.100.7")
        #expect(resolve("10.1.2.3", xff: "198.51.100.7, garbage").address == "10.1.2.3")
    }

    @Test func loopbackIsSecureAndTLSAlwaysIs() {
        #expect(resolve("127.0.0.1", list: []).channel.secure)
        #expect(resolve("::1", list: []).channel.secure)
        #expect(!resolve("192.0.2.5", list: []).channel.secure)
        #expect(resolve("192.0.2.5", tls: true, list: []).channel.secure)
        // A listed proxy on loopback that forwards a remote client over plain HTTP is not secure.
        #expect(!resolve("127.0.0.1", xff: "198.51.100.7", proto: "http").channel.secure)
        #expect(resolve("127.0.0.1", xff: "198.51.100.7", proto: "https").channel.secure)
    }
}
