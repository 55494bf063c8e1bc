import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which URLs may name an OpenID provider or one of its endpoints: absolute `https` URLs with a
/// host, or `http` URLs whose host is a loopback address (127.0.0.0/8, ::1, `localhost`), for a
/// provider on the same machine. User info and fragments are refused.
public enum EndpointPolicy {
    /// Whether `text` is an acceptable provider URL.
    public static func isAllowed(_ text: String) -> Bool {
        guard let components = URLComponents(string: text),
              let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty,
              components.user == nil, components.password == nil, components.fragment == nil
        else { return false }
        switch scheme {
        case "https": return true
        case "http": return isLoopback(host: host)
        default: return false
        }
    }

    /// Whether `url` is an acceptable provider URL.
    public static func isAllowed(_ url: URL) -> Bool {
        isAllowed(url.absoluteString)
    }

    /// `text` as a URL if it is acceptable.
    ///
    /// - Throws: ``OIDCError/insecureEndpoint(_:)`` naming `field` otherwise.
    public static func check(_ text: String, field: String) throws -> URL {
        guard isAllowed(text), let url = URL(string: text) else { throw OIDCError.insecureEndpoint(field) }
        return url
    }

    /// Whether `host` (as in a URL, IPv6 in brackets or not) is `localhost` or a loopback address.
    public static func isLoopback(host: String) -> Bool {
        var name = host.lowercased()
        if name.hasPrefix("[") && name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        if name == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, name, &v4) == 1 {
            // s_addr is in network order: the first octet is the lowest byte in memory.
            return withUnsafeBytes(of: &v4) { $0.first } == 127
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, name, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return bytes == [UInt8](repeating: 0, count: 15) + [1]
        }
        return false
    }
}
