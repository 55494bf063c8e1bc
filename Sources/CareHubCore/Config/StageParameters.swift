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
        guard let number = Int(value), range.contains(number) else {
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

    /// A duration such as `90s`, `15m`, `12h` or `30d`.
    public mutating func duration(_ key: String, default defaultValue: Duration) throws -> Duration {
        guard let value = take(key) else { return defaultValue }
        guard let duration = ConfigValue.duration(value) else {
            throw error("expected \(key) to be a duration such as 90s, 15m, 12h or 30d, found \(key)=\(value)")
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

    /// A positive whole number followed by `s`, `m`, `h` or `d`.
    public static func duration(_ text: String) -> Duration? {
        guard let unit = text.last, let amount = Int64(text.dropLast()), amount > 0 else { return nil }
        switch unit {
        case "s": return .seconds(amount)
        case "m": return .seconds(amount * 60)
        case "h": return .seconds(amount * 3600)
        case "d": return .seconds(amount * 86_400)
        default: return nil
        }
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
