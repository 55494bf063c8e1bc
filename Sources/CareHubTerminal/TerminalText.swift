/// Text the console did not write itself (messages, pre-chat fields, room and user names, the
/// hub's error messages) made safe to print on a terminal: nothing in it can move the cursor,
/// change the screen or reorder what is shown, and a message cannot start a line of its own.
///
/// - C0 controls and DEL are shown in caret notation (`ESC` as `^[`, `BEL` as `^G`, `DEL` as `^?`).
/// - C1 controls (U+0080–U+009F), bidirectional overrides, embeddings and isolates, line and
///   paragraph separators and invisible characters are shown as `\u{202E}`.
/// - In a field everything is on one line: a newline is shown as `^J`. In a message a newline
///   (or CR LF) starts a new line indented by ``continuation``, so no line of a message begins
///   where the console's own lines begin.
///
/// A patient who types `^[` or `\u{1B}` literally is shown the same characters; that is harmless.
///
/// ```swift
/// print("[\(TerminalText.field(room))] \(TerminalText.field(from)): \(TerminalText.message(text))")
/// ```
public enum TerminalText {
    /// What follows a newline inside a message.
    public static let continuation = "    | "

    /// `text` for one line: every control, newline included, made visible.
    public static func field(_ text: String) -> String {
        render(text, newline: nil)
    }

    /// `text` as message lines: controls made visible, each newline followed by ``continuation``.
    public static func message(_ text: String) -> String {
        render(text, newline: "\n" + continuation)
    }

    private static func render(_ text: String, newline: String?) -> String {
        var output = ""
        output.reserveCapacity(text.utf8.count)
        let scalars = Array(text.unicodeScalars)
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            index += 1
            if let newline {
                if scalar == "\n" {
                    output += newline
                    continue
                }
                if scalar == "\r", index < scalars.count, scalars[index] == "\n" {
                    output += newline
                    index += 1
                    continue
                }
            }
            output += visible(scalar)
        }
        return output
    }

    /// The scalar itself, or a visible stand-in for it.
    static func visible(_ scalar: Unicode.Scalar) -> String {
        switch scalar.value {
        case 0x00...0x1F: "^" + String(Unicode.Scalar(UInt8(scalar.value + 0x40)))
        case 0x7F: "^?"
        case 0x80...0x9F, // C1 controls (0x9B is CSI, 0x9D OSC)
             0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069, // bidirectional controls
             0x2028, 0x2029, // line and paragraph separators
             0x200B, 0x2060...0x2064, 0xFEFF: // invisible characters
            "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
        default: String(scalar)
        }
    }
}
