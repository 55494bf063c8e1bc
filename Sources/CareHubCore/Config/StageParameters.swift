/// The `key=value` parameters of one `stage` line, read by a stage's ``StageConfiguration``.
///
/// Each accessor consumes its key; keys nobody consumed are reported as unknown.
public struct StageParameters: Sendable {
    /// The file the line is in.
    public let file: String
    /// The line of the `stage` statement.
    public let line: Int
    private var values: [(key: String, value: String)]

    /// Wraps parsed parameters.
    public init(file: String, line: Int, values: [(key: String, value: String)]) {
        self.file = file
        self.line = line
        self.values = values
    }

    /// The value of `key` as written, without consuming it.
    public func value(of key: String) -> String? { values.first { $0.key == key }?.value }

    /// Keys not consumed yet.
    public var remainingKeys: [String] { values.map(\.key) }

    /// An error located at this stage line.
    public func error(_ message: String) -> ConfigError {
        ConfigError([ConfigIssue(file: file, line: line, message: message)])
    }

    private mutating func take(_ key: String) -> String? {
        guard let index = values.firstIndex(where: { $0.key == key }) else { return nil }
        return values.remove(at: index).value
    }

    /// The value as written, or nil when absent.
    public mutating func string(_ key: String) -> String? { take(key) }

    /// One of `choices`, or `defaultValue` when absent.
    public mutating func choice(_ key: String, _ choices: [String], default defaultValue: String) throws -> String {
        guard let value = take(key) else { return defaultValue }
        guard choices.contains(value) else {
            throw error("expected \(key)=\(choices.joined(separator: "|")), found \(key)=\(value)")
        }
        return value
    }

    /// `on`/`off` (also `yes`/`no`, `true`/`false`).
    public mutating func flag(_ key: String, default defaultValue: Bool) throws -> Bool {
        guard let value = take(key) else { return defaultValue }
        guard let flag = ConfigValue.flag(value) else {
            throw error("expected \(key)=on or \(key)=off, found \(key)=\(value)")
        }
        return flag
    }

    /// An integer within `range`.
    public mutating func integer(_ key: String, in range: ClosedRange<Int>, default defaultValue: Int) throws -> Int {
        guard let value = take(key) else { return defaultValue }
        guard let number = ConfigValue.integer(value), range.contains(number) else {
            throw error("expected \(key) to be a whole number from \(range.lowerBound) to \(range.upperBound), found \(key)=\(value)")
        }
        return number
    }

    /// A comma-separated list of CIDR blocks (`10.0.0.0/8,2001:db8::/32`); empty when absent.
    public mutating func cidrList(_ key: String) throws -> [CIDRBlock] {
        guard let value = take(key) else { return [] }
        return try value.split(separator: ",", omittingEmptySubsequences: false).map { part in
            guard let block = CIDRBlock(String(part)) else {
                throw error("expected \(key) to be CIDR blocks such as 10.0.0.0/8,2001:db8::/32, found '\(part)'")
            }
            return block
        }
    }

    /// A duration such as `90s`, `15m`, `12h` or `30d`, within `range` (at most
    /// ``ConfigValue/maximumDuration``), or `defaultValue` when absent.
    public mutating func duration(
        _ key: String, in range: ClosedRange<Duration> = ConfigValue.minimumDuration...ConfigValue.maximumDuration,
        default defaultValue: Duration
    ) throws -> Duration {
        guard let value = take(key) else { return defaultValue }
        let bounds = "from \(ConfigValue.format(range.lowerBound)) to \(ConfigValue.format(range.upperBound))"
        guard let duration = ConfigValue.duration(value), range.contains(duration) else {
            throw error("expected \(key) to be a duration \(bounds) (a whole number followed by s, m, h or d), found \(key)=\(value)")
        }
        return duration
    }
}

/// Parsing of the value forms pipeline.conf shares between settings.
public enum ConfigValue {
    /// `on`/`off`, `yes`/`no`, `true`/`false`.
    public static func flag(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "on", "yes", "true": return true
        case "off", "no", "false": return false
        default: return nil
        }
    }

    /// The shortest duration pipeline.conf accepts.
    public static let minimumDuration = Duration.seconds(1)
    /// The longest duration pipeline.conf accepts: 3650 days. Every setting has its own, usually
    /// smaller, range; this one keeps any arithmetic on a configured duration far from overflow.
    public static let maximumDuration = Duration.seconds(3650 * 86_400)

    /// A positive whole number of ASCII digits followed by `s`, `m`, `h` or `d`, at most
    /// ``maximumDuration``; nil for anything else (no sign, no spaces, no overflow).
    public static func duration(_ text: String) -> Duration? {
        let utf8 = text.utf8
        guard let unit = utf8.last, utf8.count >= 2, utf8.count <= 24 else { return nil }
        let size: Int64
        switch unit {
        case UInt8(ascii: "s"): size = 1
        case UInt8(ascii: "m"): size = 60
        case UInt8(ascii: "h"): size = 3600
        case UInt8(ascii: "d"): size = 86_400
        default: return nil
        }
        let limit = maximumDuration.components.seconds
        var amount: Int64 = 0
        for byte in utf8.dropLast() {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            amount = amount * 10 + Int64(byte - UInt8(ascii: "0"))
            // Stop before the digits can overflow: anything past the limit is refused anyway.
            guard amount <= limit else { return nil }
        }
        let (seconds, overflow) = amount.multipliedReportingOverflow(by: size)
        guard amount > 0, !overflow, seconds <= limit else { return nil }
        return .seconds(seconds)
    }

    /// A whole number of at most 18 ASCII digits with an optional leading `-`; nil for anything
    /// else (`+5`, `1e3`, `0x10`, and numbers too large to be any setting).
    public static func integer(_ text: String) -> Int? {
        let digits = text.hasPrefix("-") ? text.utf8.dropFirst() : text.utf8[...]
        guard (1...18).contains(digits.count), digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return Int(text)
    }

    /// A size in bytes written as digits with an optional unit `B`, `KB` (1,000), `MB` (1,000,000)
    /// or `KiB`/`MiB` (1,024, 1,048,576): `512KB`, `10MB`; nil for anything else, negative
    /// numbers and sizes over 1 TB included.
    public static func byteCount(_ text: String) -> Int? {
        let units: [(String, Int)] = [("KiB", 1_024), ("MiB", 1_048_576), ("KB", 1_000), ("MB", 1_000_000), ("B", 1)]
        var digits = Substring(text)
        var factor = 1
        for (unit, value) in units where digits.hasSuffix(unit) {
            digits = digits.dropLast(unit.count)
            factor = value
            break
        }
        guard (1...13).contains(digits.utf8.count), digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              let number = Int(digits), number <= 1_000_000_000_000 / factor else { return nil }
        return number * factor
    }

    /// An origin as a browser sends it in `Origin`: `scheme://host[:port]` with scheme `https` or
    /// `http`, lowercased, the scheme's default port dropped; nil for anything else (a path, a
    /// query, user info, another scheme, a bad host or port).
    public static func origin(_ text: String) -> String? {
        let lower = text.lowercased()
        let scheme: String
        if lower.hasPrefix("https://") { scheme = "https" } else if lower.hasPrefix("http://") { scheme = "http" } else { return nil }
        let authority = lower.dropFirst(scheme.count + 3)
        guard (1...300).contains(authority.utf8.count), authority.allSatisfy({ $0.isASCII && !"/?#@\\ ".contains($0) }) else { return nil }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[...close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
            guard let address = IPAddress(String(host.dropFirst().dropLast())), !address.isIPv4 || host.contains(":") else { return nil }
        } else {
            if let colon = authority.firstIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                host = authority
            }
            let labels = host.split(separator: ".", omittingEmptySubsequences: false)
            guard !host.isEmpty, labels.allSatisfy({ label in
                (1...63).contains(label.count) && label.first != "-" && label.last != "-"
                    && label.allSatisfy { ($0.isLetter || $0.isNumber || $0 == "-") }
            }) else { return nil }
        }
        var port = ""
        if let portText {
            guard let number = integer(String(portText)), (1...65_535).contains(number), portText.first != "-" else { return nil }
            if number != (scheme == "https" ? 443 : 80) { port = ":\(number)" }
        }
        return "\(scheme)://\(host)\(port)"
    }

    /// Whether a normalised origin names this machine (`localhost`, `127.0.0.1`, `[::1]`).
    public static func isLoopbackOrigin(_ origin: String) -> Bool {
        let authority = origin.drop(while: { $0 != "/" }).dropFirst(2)
        let host = authority.hasPrefix("[") ? authority.prefix(while: { $0 != "]" }) + "]" : authority.prefix(while: { $0 != ":" })
        return host == "localhost" || host == "127.0.0.1" || host == "[::1]"
    }

    /// The shortest exact rendering of a whole-second duration (`15m`, `12h`, `90s`).
    public static func format(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60)] where seconds % size == 0 && seconds >= size {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }
}
