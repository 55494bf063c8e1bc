import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one address a server binds: the configured host resolved to a numeric IPv4 or IPv6
/// address (a name is resolved once, to its first address), with the port.
public struct ListeningAddress: Sendable, Equatable, CustomStringConvertible {
    /// Numeric address, e.g. `127.0.0.1` or `::1` (no brackets).
    public let host: String
    public let port: Int
    /// True for an IPv6 address.
    public var isIPv6: Bool { host.contains(":") }

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `127.0.0.1:8080` or `[::1]:8080`.
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Resolves `host` (a numeric address, with or without brackets, or a name) to one numeric
    /// address.
    static func resolve(_ host: String) throws -> String {
        var name = host
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        guard !name.isEmpty else { throw TransportError.invalidConfiguration("the listening host is empty") }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(name, nil, &hints, &list)
        guard status == 0, let first = list else {
            throw TransportError.cannotListen("cannot resolve listening host \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(first.pointee.ai_addr, first.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 else {
            throw TransportError.cannotListen("cannot resolve listening host \(host)")
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
