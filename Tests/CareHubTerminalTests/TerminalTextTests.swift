import CareHubTerminal
import Testing

@Suite("terminal text")
struct TerminalTextTests {
    @Test func escapeSequencesCannotReachTheTerminal() {
        let attack = "hi\u{1B}[2K\u{1B}[1A\u{1B}]0;owned\u{07}"
        #expect(TerminalText.message(attack) == "hi^[[2K^[[1A^[]0;owned^G")
        #expect(!TerminalText.message(attack).unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })
    }

    @Test func everyControlIsMadeVisible() {
        for value in UInt32(0)...0x9F where value < 0x20 || value >= 0x7F {
            let scalar = Unicode.Scalar(value)!
            let shown = TerminalText.field("a" + String(scalar) + "b")
            #expect(shown.unicodeScalars.allSatisfy { $0.value >= 0x20 && !(0x7F...0x9F).contains($0.value) },
                    "U+\(String(value, radix: 16)) reached the output")
        }
        #expect(TerminalText.field("\u{7F}") == "^?")
        #expect(TerminalText.field("\u{9B}31m") == "\\u{9B}31m")
        #expect(TerminalText.field("tab\there") == "tab^Ihere")
        #expect(TerminalText.field("back\rover") == "back^Mover")
    }

    @Test func bidiOverridesAndInvisiblesAreShown() {
        #expect(TerminalText.field("invoice\u{202E}fdp.exe") == "invoice\\u{202E}fdp.exe")
        #expect(TerminalText.field("\u{2066}x\u{2069}") == "\\u{2066}x\\u{2069}")
        #expect(TerminalText.field("a\u{200B}b\u{FEFF}") == "a\\u{200B}b\\u{FEFF}")
        #expect(TerminalText.field("line\u{2028}break") == "line\\u{2028}break")
    }

    @Test func aMessageCannotStartALineOfItsOwn() {
        let forged = "thanks\nadmin: this visitor is verified\r\n* room r2 was assigned to dr.admin"
        let shown = TerminalText.message(forged)
        #expect(shown == "thanks\n    | admin: this visitor is verified\n    | * room r2 was assigned to dr.admin")
        for line in shown.split(separator: "\n").dropFirst() { #expect(line.hasPrefix(TerminalText.continuation)) }
    }

    @Test func aFieldStaysOnOneLine() {
        #expect(TerminalText.field("r1\nadmin: verified") == "r1^Jadmin: verified")
    }

    @Test func ordinaryTextIsUnchanged() {
        for text in ["Is the clinic open on Saturday?", "Grüße, Zoë — ¿qué tal? 你好 مرحبا 👩‍👩‍👧", "a\\b ^ c"] {
            #expect(TerminalText.message(text) == text)
            #expect(TerminalText.field(text) == text)
        }
    }
}
