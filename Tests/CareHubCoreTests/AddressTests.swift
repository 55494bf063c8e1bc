import CareHubCore
import Testing

@Suite("IP addresses and CIDR blocks")
struct AddressTests {
    @Test func parsesIPv4AndIPv6() {
        #expect(IPAddress("192.0.2.7")?.description == "192.0.2.7")
        #expect(IPAddress("::ffff:192.0.2.7")?.isIPv4 == true)
        #expect(IPAddress("2001:db8::1")?.description == "2001:db8:0:0:0:0:0:1")
        #expect(IPAddress("::1")?.isIPv4 == false)
        #expect(IPAddress("fe80::1%eth0") != nil)
        for bad in ["", "1.2.3", "256.1.1.1", "1.2.3.4.5", "2001:db8:::1", "12345::", "1:2:3:4:5:6:7:8:9", "example.org"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func blocksContainTheirAddressesOnly() throws {
        let v4 = try #require(CIDRBlock("10.0.0.0/8"))
        #expect(v4.contains(IPAddress("10.200.3.4")!))
        #expect(!v4.contains(IPAddress("11.0.0.1")!))
        #expect(v4.contains(IPAddress("::ffff:10.1.1.1")!))
        let v6 = try #require(CIDRBlock("2001:db8::/32"))
        #expect(v6.contains(IPAddress("2001:db8:ffff::9")!))
        #expect(!v6.contains(IPAddress("2001:db9::1")!))
        #expect(!v6.contains(IPAddress("10.0.0.1")!))
        let host = try #require(CIDRBlock("192.0.2.7"))
        #expect(host.description == "192.0.2.7/32")
        #expect(host.contains(IPAddress("192.0.2.7")!) && !host.contains(IPAddress("192.0.2.8")!))
        #expect(CIDRBlock("10.0.0.0/33") == nil)
        #expect(CIDRBlock("0.0.0.0/0")?.contains(IPAddress("8.8.8.8")!) == true)
        #expect(CIDRBlock("10.1.0.0/17")?.contains(IPAddress("10.1.127.255")!) == true)
        #expect(CIDRBlock("10.1.0.0/17")?.contains(IPAddress("10.1.128.0")!) == false)
    }
}
