import CareHubCore
@testable import CareHubServer
import Foundation
import Testing

/// The export directory as the hub writes it, with a chat's files: inside the CMS envelope the
/// files themselves, in a plain file only their description.
@Suite("transcript export files")
struct TranscriptExporterTests {
    let at = Date(timeIntervalSince1970: 1_800_000_000)
    let id = AttachmentID("a_" + String(repeating: "cd", count: 16))
    static let file = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) } + Array("FILE-CANARY".utf8)

    /// A directory with a records certificate and its key, made by `openssl`.
    final class Records {
        let directory = NSTemporaryDirectory() + "carehub-export-\(UUID().uuidString)"
        var certificate: String { directory + "/records.pem" }
        var key: String { directory + "/records-key.pem" }

        init() throws {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let status = try Self.run("/usr/bin/openssl", [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=records", "-keyout", key, "-out", certificate,
            ]).status
            try #require(status == 0, "openssl req failed")
        }

        /// The JSON inside an encrypted export.
        func open(_ path: String) throws -> [String: Any] {
            let opened = try Self.run("/usr/bin/openssl", ["cms", "-decrypt", "-inform", "DER", "-in", path, "-inkey", key])
            try #require(opened.status == 0, "openssl cms -decrypt failed")
            return try #require(try JSONSerialization.jsonObject(with: opened.output) as? [String: Any])
        }

        static func run(_ program: String, _ arguments: [String]) throws -> (output: Data, status: Int32) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = arguments
            let stdout = Pipe()
            process.standardOutput = stdout
            process.standardError = FileHandle.nullDevice
            try process.run()
            let output = stdout.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (output, process.terminationStatus)
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }
    }

    func transcript() -> Transcript {
        Transcript(
            org: OrgID("clinic"), conversation: ConversationID("c_export"), startedAt: at, endedAt: at, profileJSON: nil,
            lines: [Transcript.Line(
                seq: 1, from: "visitor", at: at, text: "",
                attachment: Transcript.File(id: id, name: "NAME-CANARY.pdf", size: Self.file.count, contentType: "application/pdf", bytes: Self.file))])
    }

    func exporter() -> HubTranscriptExporter { HubTranscriptExporter(integrations: Integrations()) }

    func attachment(in json: [String: Any]) throws -> [String: Any] {
        let messages = try #require(json["messages"] as? [[String: Any]])
        return try #require(messages.first?["attachment"] as? [String: Any])
    }

    @Test func theEncryptedExportHoldsTheFileItselfAndItsName() async throws {
        let records = try Records()
        let hipaa = OrgSettings(id: OrgID("clinic"), displayName: "Riverside", hipaa: true)
        try await exporter().export(transcript(), to: .directory(path: records.directory, certificate: records.certificate), org: hipaa)
        let path = records.directory + "/c_export.json.cms"
        let raw = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(raw.range(of: Data("FILE-CANARY".utf8)) == nil && raw.range(of: Data("NAME-CANARY".utf8)) == nil)
        let file = try attachment(in: try records.open(path))
        #expect(file["name"] as? String == "NAME-CANARY.pdf")
        #expect(file["size"] as? Int == Self.file.count && file["type"] as? String == "application/pdf")
        let data = try #require(file["data"] as? String)
        #expect(Data(base64Encoded: data).map { Array($0) == Self.file } == true, "the file itself")
    }

    @Test func aPlainExportDescribesTheFileWithoutItsBytesAndInHIPAAModeWithoutItsName() async throws {
        let records = try Records()
        for hipaa in [false, true] {
            let org = OrgSettings(id: OrgID("clinic"), displayName: "Clinic", hipaa: hipaa)
            // A HIPAA organisation's configuration refuses this sink; the exporter holds the line anyway.
            try await exporter().export(transcript(), to: .directory(path: records.directory, certificate: nil), org: org)
            let raw = try Data(contentsOf: URL(fileURLWithPath: records.directory + "/c_export.json"))
            #expect(raw.range(of: Data("FILE-CANARY".utf8)) == nil, "hipaa=\(hipaa)")
            #expect((raw.range(of: Data("NAME-CANARY".utf8)) != nil) == !hipaa, "hipaa=\(hipaa)")
            let file = try attachment(in: try #require(try JSONSerialization.jsonObject(with: raw) as? [String: Any]))
            #expect(file["data"] == nil && file["size"] as? Int == Self.file.count && file["type"] as? String == "application/pdf", "hipaa=\(hipaa)")
        }
    }
}
