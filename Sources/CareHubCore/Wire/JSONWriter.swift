import Foundation

/// Builds one JSON object as text, field by field, in the order written.
///
/// Used for every server frame so that frames are cheap to build and their field order is stable.
public struct JSONWriter: Sendable {
    private var text: String
    private var first = true

    /// Starts an empty object.
    public init() {
        // Room for a typical frame at once, instead of growing it several times.
        text = String()
        text.reserveCapacity(192)
        text += "{"
    }

    /// Field names are this hub's own identifiers (letters and digits), so they are written
    /// without the escaping scan that values get.
    private mutating func key(_ name: String) {
        assert(name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }, "field name needs escaping: \(name)")
        text += first ? "\"" : ",\""
        first = false
        text += name
        text += "\":"
    }

    /// Adds a string field.
    public mutating func field(_ name: String, _ value: String) {
        key(name)
        JSONWriter.appendQuoted(value, to: &text)
    }

    /// Adds a string field, or nothing when `value` is nil.
    public mutating func optionalField(_ name: String, _ value: String?) {
        if let value { field(name, value) }
    }

    /// Adds an integer field.
    public mutating func field(_ name: String, _ value: Int64) {
        key(name)
        text += String(value)
    }

    /// Adds an unsigned integer field.
    public mutating func field(_ name: String, _ value: UInt64) {
        key(name)
        text += String(value)
    }

    /// Adds a boolean field.
    public mutating func field(_ name: String, _ value: Bool) {
        key(name)
        text += value ? "true" : "false"
    }

    /// Adds a JSON null.
    public mutating func null(_ name: String) {
        key(name)
        text += "null"
    }

    /// Adds an array of objects, each built by `build`.
    public mutating func array<T>(_ name: String, _ items: [T], _ build: (inout JSONWriter, T) -> Void) {
        key(name)
        text += "["
        for (index, item) in items.enumerated() {
            if index > 0 { text += "," }
            var element = JSONWriter()
            build(&element, item)
            text += element.finish()
        }
        text += "]"
    }

    /// Adds a nested object built by `build`.
    public mutating func object(_ name: String, _ build: (inout JSONWriter) -> Void) {
        key(name)
        var element = JSONWriter()
        build(&element)
        text += element.finish()
    }

    /// Adds a value that is already JSON (written by this hub, such as a stored pre-chat form).
    public mutating func raw(_ name: String, _ json: String) {
        key(name)
        text += json
    }

    /// Adds an array of strings.
    public mutating func strings(_ name: String, _ items: [String]) {
        key(name)
        text += "["
        for (index, item) in items.enumerated() {
            if index > 0 { text += "," }
            JSONWriter.appendQuoted(item, to: &text)
        }
        text += "]"
    }

    /// The finished object.
    public consuming func finish() -> String {
        text += "}"
        return text
    }

    /// Appends `value` as a JSON string literal.
    public static func appendQuoted(_ value: String, to out: inout String) {
        out += "\""
        // Most strings need no escape: copy them whole. (0xE2 leads U+2028 and U+2029.)
        guard value.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0xE2 }) else {
            out += value
            out += "\""
            return
        }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

extension Date {
    /// Milliseconds since the Unix epoch, as frames carry times.
    public var epochMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
}
