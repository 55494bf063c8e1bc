import CareHubCore
import Foundation
import Testing

/// What a transcript says about the files of a chat, for each kind of sink.
@Suite("transcript attachments")
struct TranscriptExportTests {
    let at = Date(timeIntervalSince1970: 1_800_000_000)
    let id = AttachmentID("a_" + String(repeating: "ab", count: 16))

    func transcript(bytes: [UInt8]? = Array("%PDF-1.7 SECRET".utf8)) -> Transcript {
        let file = Transcript.File(id: id, name: "referral-jane-doe.pdf", size: 15, contentType: "application/pdf", bytes: bytes)
        return Transcript(
            org: OrgID("clinic"), conversation: ConversationID("c_1"), startedAt: at, endedAt: at, profileJSON: nil,
            lines: [
                Transcript.Line(seq: 1, from: "visitor", at: at, text: "see attached"),
                Transcript.Line(seq: 2, from: "visitor", at: at, text: "", attachment: file),
            ])
    }

    static let encrypted = ExportTarget.directory(path: "/exports", certificate: "/cert.pem")
    static let plain = ExportTarget.directory(path: "/exports", certificate: nil)

    /// An integration as pipeline.conf declares it.
    static func integration(_ name: String, _ values: KeyValuePairs<String, String>) throws -> Integration {
        var parameters = StageParameters(file: "test.conf", line: 1, values: values.map { (key: $0.key, value: $0.value) })
        return try Integration(name: name, parameters: &parameters, hipaa: false)
    }

    @Test func onlyAnExportEncryptedToTheCertificateKeepsTheFileItself() throws {
        let webhook = ExportTarget.webhook(try Self.integration("records", ["type": "webhook", "url": "https://records.example/in", "baa": "yes"]))
        let full = transcript()
        #expect(full.prepared(for: Self.encrypted, hipaa: true) == full)
        #expect(full.prepared(for: Self.encrypted, hipaa: false) == full)
        let data = Data("%PDF-1.7 SECRET".utf8).base64EncodedString()
        #expect(full.json().contains(#""attachment":{"id":"\#(id.rawValue)","name":"referral-jane-doe.pdf","size":15,"type":"application/pdf","state":"ready","data":"\#(data)"}"#))
        for target in [Self.plain, webhook] {
            for hipaa in [false, true] {
                let prepared = full.prepared(for: target, hipaa: hipaa)
                let file = prepared.lines.last?.attachment
                #expect(file?.bytes == nil && file?.size == 15 && file?.contentType == "application/pdf", "\(target) hipaa=\(hipaa)")
                #expect(file?.name == (hipaa ? nil : "referral-jane-doe.pdf"), "\(target) hipaa=\(hipaa)")
                #expect(!prepared.json().contains("data") && !prepared.json().contains("SECRET"), "\(target)")
                #expect(prepared.json().contains("referral") == !hipaa, "\(target) hipaa=\(hipaa)")
                #expect(prepared.lines.first == full.lines.first)
            }
        }
        #expect(full.prepared(for: webhook, hipaa: true).json().contains(#""attachment":{"id":"\#(id.rawValue)","name":null,"size":15,"#))
    }

    @Test func theMailedCopyShowsALineForTheFileNeverItsBytes() throws {
        let mail = ExportTarget.email(try Self.integration("mail", ["type": "email", "baa": "no"]), to: "pat@example.org")
        let text = transcript().prepared(for: mail, hipaa: false).plainText(organisation: "Lotus")
        #expect(text.contains("visitor: see attached\n"))
        #expect(text.contains("visitor: attachment: referral-jane-doe.pdf (15 bytes, application/pdf)\n"))
        #expect(!text.contains("SECRET"))
        var nameless = transcript(bytes: nil)
        nameless.lines[1].attachment?.name = nil
        #expect(nameless.plainText(organisation: "Lotus").contains("visitor: attachment: (15 bytes, application/pdf)\n"))
    }

    @Test func sizesReadAsPeopleReadThem() {
        #expect(Transcript.File.formatted(size: 0) == "0 bytes")
        #expect(Transcript.File.formatted(size: 1) == "1 byte")
        #expect(Transcript.File.formatted(size: 1023) == "1023 bytes")
        #expect(Transcript.File.formatted(size: 12_800) == "12.5 KB")
        #expect(Transcript.File.formatted(size: 3 * 1024 * 1024 + 104_858) == "3.1 MB")
    }
}
