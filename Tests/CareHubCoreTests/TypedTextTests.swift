@testable import CareHubCore
import Foundation
import Testing

@Suite("typed text")
struct TypedTextTests {
    @Test func terminalEscapesAreRemovedFromMessageText() {
        let typed = "pain\u{1B}[2K\u{1B}[1A level 7\u{9B}31mred\u{7}\u{7F}"
        let clean = TypedText.clean(typed, as: .multiLine)
        #expect(clean == "pain[2K[1A level 731mred")
        #expect(!clean.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x9B || $0.value == 0x07 || $0.value == 0x7F })
    }

    @Test func lineBreaksAreNormalisedInMultiLineText() {
        #expect(TypedText.clean("a\r\nb\rc\nd\te", as: .multiLine) == "a\nb\nc\nd\te")
        #expect(TypedText.clean("a\r\r\nb", as: .multiLine) == "a\n\nb")
        #expect(TypedText.clean("\0a\u{1}\u{1F}", as: .multiLine) == "a")
    }

    @Test func singleLineFieldsGetSpacesForLineBreaksAndTabs() {
        #expect(TypedText.clean("Ada\r\nLovelace\tPhD\nX\rY", as: .singleLine) == "Ada Lovelace PhD X Y")
    }

    @Test func bidirectionalControlsAndC1AreRemovedOtherTextKept() {
        let typed = "\u{202A}a\u{202B}b\u{202C}c\u{202D}d\u{202E}e\u{2066}f\u{2067}g\u{2068}h\u{2069}i\u{80}\u{9F}"
        #expect(TypedText.clean(typed, as: .multiLine) == "abcdefghi")
        // Neighbours of the removed ranges stay: U+00A0, U+2029, U+202F, U+2065, U+206A, and emoji, accents, CJK.
        let kept = "\u{A0}\u{2029}\u{202F}\u{2065}\u{206A} héllo 👩🏽‍⚕️ 病院 \u{E2}"
        #expect(TypedText.clean(kept, as: .multiLine) == kept)
        #expect(!TypedText.needsCleaning(kept, as: .singleLine))
    }

    @Test func cleanTextIsReturnedAsIs() {
        let text = "Hello, I have a question about my appointment.\nThanks!"
        #expect(!TypedText.needsCleaning(text, as: .multiLine))
        #expect(TypedText.needsCleaning(text, as: .singleLine))
        #expect(TypedText.clean(text, as: .multiLine) == text)
        #expect(TypedText.hasControlCharacters("nurse.kim\t"))
        #expect(!TypedText.hasControlCharacters("nurse.kim"))
    }

    func decode(_ json: String) -> Result<Envelope, Envelope.DecodingFailure> { Envelope.decode(Array(json.utf8)) }

    @Test func theDecoderCleansMessageTextOnEitherParser() throws {
        let expected = ClientFrame.send(room: ConversationID("c_1"), text: "a[2K[1Ab\nc")
        #expect(try decode(#"{"type":"send","room":"c_1","text":"a\u001b[2K\u001b[1Ab\r\nc"}"#).get().frame == expected)
        #expect(try decode(#"{"type":"send","room":"c_1","text":"a\u001b[2K\u001b[1Ab\r\nc","n":1}"#).get().frame == expected)
        #expect(try decode(#"{"type":"send","room":"c_1","text":"a\u009b[2K\u009b[1Ab\rc"}"#).get().frame == expected)
        // Raw C1 bytes (U+009B as C2 9B) in the frame too.
        var bytes = Array(#"{"type":"send","room":"c_1","text":"x"#.utf8)
        bytes += [0xC2, 0x9B] + Array("2Jy\"}".utf8)
        #expect(try Envelope.decode(bytes).get().frame == .send(room: ConversationID("c_1"), text: "x2Jy"))
    }

    @Test func textOfOnlyControlsIsEmpty() throws {
        let failure = try #require(decode(#"{"type":"send","room":"c_1","text":"\u001b\u0007\u202e"}"#).failureValue)
        #expect(failure.error.message == "field 'text' must not be empty")
    }

    @Test func preChatFieldsAreCleanedByForm() throws {
        let frame = try decode(#"{"type":"hello","org":"clinic","profile":{"name":"Ada\u001b[31m\nLovelace","phone":"555\t0100","email":"a@b.example\u0007","reason":"rash\r\non arm\u202e"}}"#).get().frame
        #expect(frame == .hello(org: OrgID("clinic"), token: nil, profile: VisitorProfile(fields: [
            "name": "Ada[31m Lovelace", "phone": "555 0100", "email": "a@b.example", "reason": "rash\non arm",
        ])))
    }

    @Test func identifiersWithControlCharactersAreRefusedNotCleaned() {
        func message(_ json: String) -> String? {
            if case .failure(let failure) = decode(json) { return "\(failure.error.code.rawValue)|\(failure.error.message)" }
            return nil
        }
        #expect(message(#"{"type":"login","org":"clinic","user":"kim\u001b[2K","password":"pw"}"#) == "invalid_field|field 'user' must not contain control characters")
        #expect(message(#"{"type":"login","org":"clinic","user":"kim\n","password":"pw","n":1}"#) == "invalid_field|field 'user' must not contain control characters")
        #expect(message(#"{"type":"assign","room":"c_1","user":"kim\t"}"#) == "invalid_field|field 'user' must not contain control characters")
        #expect(message(#"{"type":"subscribe","room":"c_1\u202e"}"#) == "invalid_field|field 'room' must not contain control characters")
        #expect(message(#"{"type":"rooms","id":"1\u001b"}"#) == "invalid_field|field 'id' must not contain control characters")
        #expect(message(#"{"type":"transcript","room":"c_1","to":"a\u001b@b.example"}"#)?.hasPrefix("invalid_field|field 'to' must be an e-mail") == true)
        #expect(message(#"{"type":"tele\u001bport"}"#)?.contains("\u{1B}") == false)
    }

    @Test func theBAAOfficerNameIsASingleLine() throws {
        let frame = try decode(#"{"type":"admin","op":"hipaa.enable","baaSignedOn":"2026-01-01","privacyOfficer":"Pat\u001b[2J\nLee","privacyOfficerEmail":"p@c.example"}"#).get().frame
        #expect(frame == .admin(.enableHIPAA(BAAAttestation(signedOn: "2026-01-01", officerName: "Pat[2J Lee", officerEmail: "p@c.example"))))
    }

    @Test func aFrameThatIsNotUTF8SaysSo() throws {
        var bytes = Array(#"{"type":"admin","op":"pipeline.check","text":"[org a]"#.utf8)
        bytes += [0xFF] + Array("\"}".utf8)
        let failure = try #require(Envelope.decode(bytes).failureValue)
        #expect(failure.error.code == .badJSON)
        #expect(failure.error.message == "frame is not valid UTF-8")
    }
}

extension Result {
    /// The error of a failure, nil for a success.
    var failureValue: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}
