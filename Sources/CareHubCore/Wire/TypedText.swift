/// Text a person typed (message text, pre-chat answers, names), cleaned of the characters that
/// could drive a reader's terminal or reorder what a reader sees.
///
/// Removed everywhere: C0 controls (U+0000–U+001F) other than newline and tab, DEL (U+007F), C1
/// controls (U+0080–U+009F, among them the one-byte CSI U+009B) and the bidirectional overrides
/// and isolates (U+202A–U+202E, U+2066–U+2069). CR LF and a lone CR become LF.
///
/// ```swift
/// TypedText.clean("hi\u{1B}[2K\r\nthere", as: .multiLine)   // "hi[2K\nthere"
/// TypedText.clean("Ada\tLovelace", as: .singleLine)        // "Ada Lovelace"
/// ```
///
/// A string holding none of these characters comes back as it is, after one scan of its bytes.
public enum TypedText {
    /// Which line breaks a field keeps.
    public enum Form: Sendable {
        /// Message text, a visit's reason: newline and tab stay.
        case multiLine
        /// A name, an address, a phone number: newline and tab become a space.
        case singleLine
    }

    /// `text` without control, DEL, C1 or bidirectional-control characters; line breaks as `form` says.
    public static func clean(_ text: String, as form: Form) -> String {
        guard needsCleaning(text, as: form) else { return text }
        var scalars = String.UnicodeScalarView()
        var previousWasCR = false
        for scalar in text.unicodeScalars {
            let wasCR = previousWasCR
            previousWasCR = false
            switch scalar.value {
            case 0x0D:
                previousWasCR = true
                scalars.append(form == .multiLine ? "\n" : " ")
            case 0x0A:
                // The LF of a CR LF pair was already written for the CR.
                if !wasCR { scalars.append(form == .multiLine ? "\n" : " ") }
            case 0x09:
                scalars.append(form == .multiLine ? "\t" : " ")
            default:
                if !isForbidden(scalar) { scalars.append(scalar) }
            }
        }
        return String(scalars)
    }

    /// Whether `text` holds a character ``clean(_:as:)`` would change: a byte scan of its UTF-8.
    public static func needsCleaning(_ text: String, as form: Form) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte < 0x20 {
                    if form == .singleLine || (byte != 0x0A && byte != 0x09) { return true }
                } else if byte == 0x7F {
                    return true
                } else if byte == 0xC2, index + 1 < bytes.count, (0x80...0x9F).contains(bytes[index + 1]) {
                    return true  // U+0080–U+009F
                } else if byte == 0xE2, index + 2 < bytes.count {
                    let second = bytes[index + 1], third = bytes[index + 2]
                    if second == 0x80 && (0xAA...0xAE).contains(third) { return true }  // U+202A–U+202E
                    if second == 0x81 && (0xA6...0xA9).contains(third) { return true }  // U+2066–U+2069
                }
                index += 1
            }
            return false
        }
    }

    /// Whether `text` holds any control, DEL, C1 or bidirectional-control character, newline and
    /// tab included: the test for identifiers (`user`, `room`), which are refused rather than cleaned.
    public static func hasControlCharacters(_ text: String) -> Bool {
        needsCleaning(text, as: .singleLine)
    }

    /// The characters removed from every typed field (newline, tab and CR aside, which depend on the form).
    public static func isForbidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F, 0x80...0x9F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}
