@testable import CareHubCore
import Foundation
import Testing

@Suite("canned replies on the wire")
struct CannedReplyWireTests {
    func frame(_ text: String) throws -> ClientFrame {
        try Envelope.decode(Array(text.utf8)).get().frame
    }

    func failure(_ text: String) -> PipelineError? {
        guard case .failure(let failure) = Envelope.decode(Array(text.utf8)) else { return nil }
        return failure.error
    }

    /// `{"type":"admin","op":"replies.set",…}` with `name` and `text` encoded as JSON strings.
    func set(name: String, text: String) throws -> String {
        let object: [String: String] = ["type": "admin", "op": "replies.set", "name": name, "text": text]
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    @Test func theStaffFrameAndTheThreeAdminOpsDecode() throws {
        #expect(try frame(#"{"type":"replies","id":"r1"}"#) == .replies)
        #expect(!ClientFrame.replies.isUserAction)
        #expect(ClientFrame.replies.room == nil)
        #expect(try frame(#"{"type":"admin","op":"replies.list"}"#) == .admin(.replies))
        #expect(try frame(#"{"type":"admin","op":"replies.set","name":"hours","text":"We open at 8."}"#)
            == .admin(.saveReply(CannedReply(name: "hours", text: "We open at 8."))))
        #expect(try frame(#"{"type":"admin","op":"replies.delete","name":" hours "}"#) == .admin(.deleteReply(name: "hours")))
        #expect(AdminRequest.saveReply(CannedReply(name: "a", text: "b")).op.rawValue == "replies.set")
        #expect(AdminRequest.deleteReply(name: "a").op.rawValue == "replies.delete")
    }

    @Test func aNameIsOneCleanTrimmedLineOf1To40Characters() throws {
        let forty = String(repeating: "é", count: 40)  // 80 bytes, 40 characters
        #expect(try frame(set(name: forty, text: "x")) == .admin(.saveReply(CannedReply(name: forty, text: "x"))))
        let tooLong = failure(try set(name: forty + "e", text: "x"))
        #expect(tooLong?.code == .invalidField)
        #expect(tooLong?.message == "field 'name' must be 1-40 characters on one line")
        // Trimming comes before counting: 40 characters inside spaces are accepted.
        #expect(try frame(set(name: "  \(forty)\t", text: "x")) == .admin(.saveReply(CannedReply(name: forty, text: "x"))))
        // Control, C1 and bidirectional characters go; newline and tab become spaces.
        #expect(try frame(set(name: "\u{1B}[31mopening\u{202E}\nhours\u{9B}", text: "x"))
            == .admin(.saveReply(CannedReply(name: "[31mopening hours", text: "x"))))
        #expect(failure(try set(name: " \u{07}\u{1B} ", text: "x"))?.code == .invalidField)
        #expect(failure(#"{"type":"admin","op":"replies.set","text":"x"}"#)?.message == "field 'name' is required")
        #expect(failure(#"{"type":"admin","op":"replies.delete","name":"\u0007"}"#)?.code == .invalidField)
    }

    @Test func aTextIs1To2000BytesOfCleanMultiLineText() throws {
        let full = String(repeating: "a", count: 1_998) + "é"  // 2,000 bytes
        #expect(try frame(set(name: "n", text: full)) == .admin(.saveReply(CannedReply(name: "n", text: full))))
        let tooLong = failure(try set(name: "n", text: full + "a"))
        #expect(tooLong?.code == .invalidField)
        #expect(tooLong?.message == "field 'text' is longer than 2000 bytes")
        #expect(try frame(set(name: "n", text: "Line one\r\n\tline two\u{1B}[2K\u{2066}!"))
            == .admin(.saveReply(CannedReply(name: "n", text: "Line one\n\tline two[2K!"))))
        #expect(failure(try set(name: "n", text: "\n \u{1B}\u{7F}"))?.message == "field 'text' must not be empty")
        #expect(failure(#"{"type":"admin","op":"replies.set","name":"n","text":""}"#)?.message == "field 'text' is required")
    }

    @Test func theReplyListsNameAndTextInOrder() {
        let frame = ServerFrame.replies(id: "r1", replies: [
            CannedReply(name: "hours", text: "We open at 8.\nClosed Sundays."), CannedReply(name: "parking", text: "Behind \"B\"."),
        ])
        #expect(frame.json() == #"{"type":"replies","id":"r1","replies":[{"name":"hours","text":"We open at 8.\nClosed Sundays."},{"name":"parking","text":"Behind \"B\"."}]}"#)
        #expect(ServerFrame.replies(id: nil, replies: []).json() == #"{"type":"replies","replies":[]}"#)
    }
}
