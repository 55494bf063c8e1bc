@testable import CareHubCore
import Foundation
import Testing

@Suite("wire protocol v1")
struct WireTests {
    func decode(_ text: String) -> Result<Envelope, Envelope.DecodingFailure> {
        Envelope.decode(Array(text.utf8))
    }

    func failure(_ text: String) -> (code: ErrorCode, id: String?)? {
        guard case .failure(let failure) = decode(text) else { return nil }
        return (failure.error.code, failure.id)
    }

    @Test func everyClientFrameDecodes() throws {
        #expect(try decode(#"{"type":"hello","org":"clinic","id":"1"}"#).get() == Envelope(id: "1", frame: .hello(org: OrgID("clinic"), token: nil)))
        #expect(try decode(#"{"type":"hello","org":"clinic","token":"t"}"#).get().frame == .hello(org: OrgID("clinic"), token: "t"))
        #expect(try decode(#"{"type":"login","org":"clinic","user":"joy","password":"pw"}"#).get().frame
            == .login(org: OrgID("clinic"), user: "joy", password: Password("pw"), totp: nil))
        #expect(try decode(#"{"type":"login","org":"clinic","user":"joy","password":"pw","totp":" 123 456 "}"#).get().frame
            == .login(org: OrgID("clinic"), user: "joy", password: Password("pw"), totp: "123456"))
        #expect(try decode(#"{"type":"rooms"}"#).get().frame == .rooms())
        #expect(try decode(#"{"type":"rooms","visitors":true}"#).get().frame == .rooms(visitors: true))
        #expect(try decode(#"{"type":"hello","org":"clinic","profile":{"name":" Ada ","email":"","reason":"rash"}}"#).get().frame
            == .hello(org: OrgID("clinic"), token: nil, profile: VisitorProfile(fields: ["name": "Ada", "reason": "rash"])))
        #expect(try decode(#"{"type":"subscribe","room":"c_1"}"#).get().frame == .subscribe(room: ConversationID("c_1")))
        #expect(try decode(#"{"type":"unsubscribe","room":"c_1"}"#).get().frame == .unsubscribe(room: ConversationID("c_1")))
        #expect(try decode(#"{"type":"send","room":"c_1","text":"héllo \"there\""}"#).get().frame == .send(room: ConversationID("c_1"), text: "héllo \"there\""))
        #expect(try decode(#"{"type":"end","room":"c_1"}"#).get().frame == .end(room: ConversationID("c_1")))
        #expect(try decode(#"{"type":"logout"}"#).get().frame == .logout)
    }

    @Test func badFramesGetPreciseCodesAndKeepTheirID() {
        #expect(failure("not json")?.code == .badJSON)
        #expect(failure("[1]")?.code == .badJSON)
        #expect(failure(#"{"type":"teleport","id":"x"}"#).map { "\($0.code)|\($0.id ?? "")" } == "unknownType|x")
        #expect(failure(#"{"id":"y"}"#).map { "\($0.code)|\($0.id ?? "")" } == "invalidField|y")
        #expect(failure(#"{"type":7}"#)?.code == .invalidField)
        #expect(failure(#"{"type":"send","room":"c_1"}"#)?.code == .invalidField)
        #expect(failure(#"{"type":"send","room":"c_1","text":""}"#)?.code == .invalidField)
        #expect(failure(#"{"type":"send","room":"c_1","text":" \n\t "}"#)?.code == .invalidField)
        #expect(failure(#"{"type":"hello","org":"Not An Org"}"#)?.code == .invalidField)
        #expect(failure(#"{"type":"rooms","id":5}"#)?.code == .invalidField)
        #expect(failure(#"{"type":"hello","org":"clinic","profile":{"ssn":"123"}}"#)?.code == .invalidField)
        #expect(failure(#"{"type":"hello","org":"clinic","profile":"Ada"}"#)?.code == .invalidField)
        let long = String(repeating: "a", count: Envelope.maxTextBytes + 1)
        #expect(failure(#"{"type":"send","room":"c_1","text":"\#(long)"}"#)?.code == .invalidField)
    }

    /// Frames of strings only take the fast parser, anything else the full one: the same mistake
    /// gets the same message either way.
    @Test func fieldErrorsReadTheSameOnEitherParser() {
        func message(_ text: String) -> String? {
            guard case .failure(let failure) = decode(text) else { return nil }
            return "\(failure.id ?? "-")|\(failure.error.message)"
        }
        let longID = String(repeating: "i", count: 65)
        let cases: [(strings: String, other: String, expected: String)] = [
            (#"{"id":"y"}"#, #"{"id":"y","n":1}"#, "y|field 'type' is required"),
            (#"{"type":"rooms","id":"\#(longID)"}"#, #"{"type":"rooms","id":5}"#, "-|field 'id' must be a string of at most 64 characters"),
            (#"{"type":"send","room":"c_1","id":"m"}"#, #"{"type":"send","room":"c_1","id":"m","n":1}"#, "m|field 'text' is required"),
            (#"{"type":"send","room":"c_1","text":"","id":"m"}"#, #"{"type":"send","room":"c_1","text":null,"id":"m"}"#, "m|field 'text' is required"),
            (#"{"type":"subscribe","room":"\#(longID)"}"#, #"{"type":"subscribe","room":"\#(longID)","n":1}"#, "-|field 'room' is longer than 64 bytes"),
        ]
        for (strings, other, expected) in cases {
            #expect(message(strings) == expected, "\(strings)")
            #expect(message(other) == expected, "\(other)")
        }
        #expect(message(#"{"type":7}"#) == "-|field 'type' must be a string")
        #expect(message(#"{"type":null}"#) == "-|field 'type' must be a string")
        #expect(message(#"{"type":"send","room":"c_1","text":5,"id":"m"}"#) == "m|field 'text' must be a string")
        #expect(message(#"{"type":"rooms","id":null}"#) == "-|field 'id' must be a string of at most 64 characters")
    }

    @Test func invalidUTF8IsBadJSONNotACrash() {
        guard case .failure(let failure) = Envelope.decode([0x7B, 0xFF, 0xFE, 0x7D]) else {
            Issue.record("invalid UTF-8 decoded")
            return
        }
        #expect(failure.error.code == .badJSON)
    }

    @Test func serverFramesAreJSONWithEscapedText() throws {
        let at = Date(timeIntervalSince1970: 1_700_000_000.5)
        let json = ServerFrame.message(room: ConversationID("c_1"), seq: 3, from: "nurse.joy", text: "line1\n\"quoted\" \u{01} ✓", at: at).json()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["type"] as? String == "message")
        #expect(object["room"] as? String == "c_1")
        #expect(object["seq"] as? Int == 3)
        #expect(object["text"] as? String == "line1\n\"quoted\" \u{01} ✓")
        #expect(object["at"] as? Int == 1_700_000_000_500)

        let error = ServerFrame.error(id: "q", error: PipelineError(.forbidden, "no")).json()
        #expect(error == #"{"type":"error","code":"forbidden","message":"no","id":"q"}"# || error == #"{"type":"error","id":"q","code":"forbidden","message":"no"}"#)
    }

    @Test func errorCodesAreStable() {
        #expect(ErrorCode.allCases.map(\.rawValue) == [
            "bad_json", "too_large", "binary_frame", "unknown_type", "invalid_field", "unknown_org", "unauthenticated",
            "already_authenticated", "auth_failed", "forbidden", "not_found", "conversation_ended", "session_expired",
            "unavailable", "config_refused", "conflict", "rate_limited", "insecure_transport", "origin_refused", "unsupported_type", "infected", "attachment_held", "code_required", "sign_in_pending", "internal",
        ])
    }

    @Test func adminOperationsDecodeWithPreciseErrors() throws {
        func decode(_ json: String) -> Result<Envelope, Envelope.DecodingFailure> { Envelope.decode(Array(json.utf8)) }
        #expect(try decode(#"{"type":"admin","op":"pipeline.replace","text":"[org a]","base":"v1"}"#).get().frame
            == .admin(.replacePipeline(text: "[org a]", base: "v1", apply: true)))
        #expect(try decode(#"{"type":"admin","op":"pipeline.check","text":"[org a]"}"#).get().frame
            == .admin(.replacePipeline(text: "[org a]", base: nil, apply: false)))
        #expect(try decode(#"{"type":"admin","op":"hipaa.disable","purge":true}"#).get().frame == .admin(.disableHIPAA(purge: true)))
        #expect(try decode(#"{"type":"admin","op":"hipaa.disable"}"#).get().frame == .admin(.disableHIPAA(purge: false)))
        #expect(try decode(#"{"type":"admin","op":"audit.list","limit":20,"before":99}"#).get().frame == .admin(.audit(limit: 20, before: 99)))
        #expect(try decode(#"{"type":"admin","op":"users.set_role","user":"nurse.kim","role":"admin"}"#).get().frame
            == .admin(.setRole(user: "nurse.kim", role: .admin)))

        func message(_ json: String) -> String? {
            if case .failure(let failure) = decode(json) { return failure.error.message }
            return nil
        }
        #expect(message(#"{"type":"admin","op":"hipaa.disable","purge":1}"#) == "field 'purge' must be true or false")
        #expect(message(#"{"type":"admin","op":"audit.list","limit":0}"#) == "field 'limit' must be between 1 and 500")
        #expect(message(#"{"type":"admin","op":"audit.list","limit":true}"#) == "field 'limit' must be a whole number")
        #expect(message(#"{"type":"admin","op":"users.set_role","user":"a b","role":"admin"}"#) == "field 'user' must be 1-64 letters, digits, '.', '_' or '-'")
        #expect(message(#"{"type":"admin","op":"users.set_role","user":"kim","role":"owner"}"#) == "field 'role' must be 'staff' or 'admin'")
        #expect(message(#"{"type":"admin","op":"hipaa.enable","baaSignedOn":"2026-01-01"}"#) == "field 'privacyOfficer' is required")
        #expect(message(#"{"type":"admin","op":"drop"}"#)?.hasPrefix("unknown admin op 'drop'; known ops: pipeline.get, pipeline.check") == true)
    }

    @Test func aBAAAttestationNeedsARealPastDateANameAndAnAddress() {
        let today = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15
        #expect(BAAAttestation(signedOn: "2026-12-01", officerName: "Dana", officerEmail: "privacy@example.org").problem(today: today) == nil)
        #expect(BAAAttestation(signedOn: "2027-01-16", officerName: "Dana", officerEmail: "privacy@example.org").problem(today: today)?.contains("future") == true)
        #expect(BAAAttestation(signedOn: "2026-02-30", officerName: "Dana", officerEmail: "privacy@example.org").problem(today: today)?.contains("YYYY-MM-DD") == true)
        #expect(BAAAttestation(signedOn: "2026-12-01", officerName: " ", officerEmail: "privacy@example.org").problem(today: today)?.contains("name") == true)
        #expect(BAAAttestation(signedOn: "2026-12-01", officerName: "Dana", officerEmail: "privacy").problem(today: today)?.contains("e-mail") == true)
    }
}

@Suite("JSON writer")
struct JSONWriterTests {
    func written(_ value: String) -> String {
        var writer = JSONWriter()
        writer.field("t", value)
        return writer.finish()
    }

    @Test func plainTextIsCopiedAndEveryEscapeIsWritten() throws {
        #expect(written("hello nurse, é ü 漢字 🩺") == #"{"t":"hello nurse, é ü 漢字 🩺"}"#)
        #expect(written(#"say "ah" \ now"#) == #"{"t":"say \"ah\" \\ now"}"#)
        #expect(written("a\nb\rc\td\u{1}e") == #"{"t":"a\nb\rc\td\u0001e"}"#)
        #expect(written("line\u{2028}para\u{2029}end") == #"{"t":"line\u2028para\u2029end"}"#)
        // A lead byte 0xE2 that is not U+2028/2029 stays as it is.
        #expect(written("→ ok") == #"{"t":"→ ok"}"#)
        for sample in ["", "plain", "quote \" back \\ nl \n", "mixed \u{2028} é \u{7f} \u{1f}", "🩺\u{0}"] {
            let parsed = try JSONSerialization.jsonObject(with: Data(written(sample).utf8)) as? [String: String]
            #expect(parsed?["t"] == sample)
        }
    }
}

@Suite("flat JSON fast path")
struct FlatJSONTests {
    func full(_ text: String) -> [String: String]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: String]
    }

    func fast(_ text: String) -> [String: String]? {
        FlatJSON.object(Array(text.utf8))
    }

    @Test func agreesWithTheFullParserOnEveryObjectOfStrings() {
        let samples = [
            #"{"type":"send","room":"c_00ab","text":"my chest hurts","id":"m1"}"#,
            #" { "type" : "typing" ,"room":"c_1" } "#,
            "{}",
            #"{"t":""}"#,
            #"{"t":"quote \" back \\ slash \/ \b\f\n\r\t end"}"#,
            #"{"t":"é 漢字 🩺 \u00e9 \u6F22 \ud83e\ude7a \u0000 \u001f"}"#,
            "{\"t\":\"raw é 🩺\"}",
            "{\n\t\"a\": \"1\",\r\n\"b\": \"2\"\n}",
        ]
        for sample in samples {
            #expect(fast(sample) != nil, "\(sample)")
            #expect(fast(sample) == full(sample), "\(sample)")
        }
    }

    @Test func leavesEverythingElseToTheFullParser() {
        let samples = [
            #"{"limit":20}"#, #"{"purge":true}"#, #"{"p":null}"#, #"{"profile":{"name":"x"}}"#, #"{"a":["x"]}"#,
            #"{"a":"1","a":"2"}"#, #"["x"]"#, #""x""#, "", "{", #"{"a":"1",}"#, #"{"a":"1"} x"#, #"{"a" "1"}"#,
            #"{"a":"\x"}"#, #"{"a":"\ud83e"}"#, #"{"a":"\ude7a"}"#, #"{"a":"\u12"}"#, "{\"a\":\"line\nbreak\"}", #"{"a":"open}"#,
        ]
        for sample in samples { #expect(fast(sample) == nil, "\(sample)") }
        // Invalid UTF-8 inside a string.
        #expect(FlatJSON.object(Array(#"{"a":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)) == nil)
    }

    @Test func framesDecodeTheSameEitherWay() throws {
        let decoded = Envelope.decode(Array(#"{"type":"send","room":"c_1","text":"hi \"there\"","id":"m9"}"#.utf8))
        #expect(try decoded.get() == Envelope(id: "m9", frame: .send(room: ConversationID("c_1"), text: "hi \"there\"")))
    }
}
