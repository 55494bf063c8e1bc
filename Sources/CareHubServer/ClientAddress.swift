import CareHubCore
import Foundation

/// Who is really at the other end of a connection, and how it reached the hub.
///
/// The socket's peer is the client, unless the peer is a reverse proxy the operator listed
/// (`--trusted-proxy`): then the client is the last address in `X-Forwarded-For` that is not
/// itself a listed proxy, and `X-Forwarded-Proto: https` says the proxy terminated TLS. Headers
/// from anyone else are ignored, so a stranger cannot choose the address its limits and audit
/// rows are kept under.
struct ClientAddress: Sendable, Equatable {
    /// The client's address, as audit rows, allow-lists and limits see it.
    let address: String
    /// How the connection reached the hub.
    let channel: Channel

    /// Resolves a connection's facts against the listed proxies.
    init(
        peer: String, forwardedFor: String?, forwardedProto: String?, tls: Bool, origin: String?, host: String?,
        trustedProxies: [CIDRBlock]
    ) {
        let peerAddress = IPAddress(peer)
        let trusted = { (address: IPAddress?) -> Bool in
            guard let address else { return false }
            return trustedProxies.contains { $0.contains(address) }
        }
        var client = peer
        var secure = tls || (peerAddress.map(Self.isLoopback) ?? false)
        if trusted(peerAddress) {
            // Walk from the nearest hop outwards; the first address no listed proxy owns is the
            // client. A malformed entry stops the walk there: what lies beyond it is unknowable.
            let hops = (forwardedFor ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            for hop in hops.reversed() {
                guard let address = IPAddress(hop) else { break }
                client = address.description
                if !trusted(address) { break }
            }
            // The proxy says how the client reached it; what reached the hub is the proxy's word.
            let proto = forwardedProto?.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            secure = tls || proto == "https" || (proto == nil && client == peer && (peerAddress.map(Self.isLoopback) ?? false))
        }
        address = client
        let scheme = tls || (trusted(peerAddress) && forwardedProto?.lowercased().hasPrefix("https") == true) ? "https" : "http"
        channel = Channel(secure: secure, origin: origin, ownOrigin: host.map { "\(scheme)://\($0.lowercased())" })
    }

    /// 127.0.0.0/8 and ::1.
    static func isLoopback(_ address: IPAddress) -> Bool {
        if address.isIPv4 { return address.bytes[12] == 127 }
        return address.bytes == Array(repeating: 0, count: 15) + [1]
    }
}
