import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Testing

/// The end-of-chat hook with files in the chat: the files themselves only in an export encrypted
/// to the organisation's certificate, a description elsewhere (without the name in HIPAA mode),
/// and the files erased with the chat.
@Suite("attachments at the end of a chat")
struct AttachmentExportTests {
    static let encrypted = StageHarness.hipaaConfig.replacingOccurrences(
        of: "stage purge on=end", with: "stage purge on=end export_dir=/var/lib/carehub/exports export_key=/etc/carehub/export.pem")
    static let webhook = StageHarness.hipaaConfig.replacingOccurrences(of: "stage purge on=end", with: "stage purge on=end export_to=pager")
    static let plainDirectory = StageHarness.wellnessConfig.replacingOccurrences(
        of: "stage fanout", with: "stage purge on=end export_dir=/var/lib/carehub/exports\nstage fanout")

    /// A file of three chunks, the last one short.
    static let file = (0..<(2 * CareHubCore.Attachment.chunkSize + 10)).map { UInt8(truncatingIfNeeded: $0 &* 7) }

    /// Stores `bytes` as an attachment message in `room`, sealed as the encrypt stage seals them
    /// when the organisation is in HIPAA mode.
    @discardableResult
    func attach(
        _ hub: StageHarness, _ room: ConversationID, name: String, _ bytes: [UInt8], state: AttachmentState = .ready
    ) async throws -> AttachmentID {
        let world = hub.world
        let id = AttachmentID.random()
        let history = SealedHistory(org: hub.org.id, environment: world.environment)
        let storedName: MessageBody = hub.org.hipaa ? .sealed(try await history.sealAttachmentName(name, id: id, in: room)) : .plain(name)
        try await world.attachments.begin(CareHubCore.Attachment(
            id: id, org: hub.org.id, conversation: room, sender: "visitor", name: storedName, contentType: "application/pdf", at: world.clock.now))
        let count = CareHubCore.Attachment.chunkCount(forSize: bytes.count)
        for index in 0..<count {
            let piece = Array(bytes[min(bytes.count, index * CareHubCore.Attachment.chunkSize)..<min(bytes.count, (index + 1) * CareHubCore.Attachment.chunkSize)])
            let chunk: AttachmentChunk = hub.org.hipaa
                ? .sealed(try await history.sealAttachmentChunk(piece, id: id, index: index, last: index == count - 1, in: room))
                : .plain(piece)
            try await world.attachments.appendChunk(id, index: index, chunk)
        }
        let seq = try await world.messages.reserveSequence(in: room)
        try await world.attachments.finish(
            id, state: state, size: bytes.count, contentType: "application/pdf",
            message: StoredMessage(conversation: room, seq: seq, sender: "visitor", at: world.clock.now, body: .plain(""), attachment: id),
            recording: [])
        return id
    }

    /// A chat with a message, a file and a held file, ended by staff.
    func endedChat(_ config: String) async throws -> (hub: StageHarness, room: ConversationID, ready: AttachmentID, held: AttachmentID) {
        let hub = try StageHarness(config)
        let room = try await hub.visitor(1)
        _ = await hub.run(.send(room: room, text: "here it is"), from: 1)
        let ready = try await attach(hub, room, name: "referral-jane-doe.pdf", Self.file)
        let held = try await attach(hub, room, name: "lab-results.pdf", [1, 2, 3], state: .held)
        _ = await hub.login(2)
        _ = await hub.run(.end(room: room), from: 2)
        return (hub, room, ready, held)
    }

    @Test func theEncryptedExportCarriesTheFilesOpenedAndThePurgeErasesThem() async throws {
        let (hub, room, ready, held) = try await endedChat(Self.encrypted)
        let export = try #require(hub.world.exporter.exports.first)
        let files = export.transcript.lines.compactMap(\.attachment)
        #expect(files.map(\.id) == [ready, held])
        #expect(files.map(\.name) == ["referral-jane-doe.pdf", "lab-results.pdf"])
        #expect(files.first?.bytes.map { $0 == Self.file } == true, "the file, opened")
        #expect(files.first?.size == Self.file.count && files.first?.contentType == "application/pdf")
        // Never passed a scan: described, not exported.
        #expect(files.last?.state == .held && files.last?.bytes == nil)
        #expect(export.transcript.lines.first?.text == "here it is")

        #expect(hub.world.attachments.all.isEmpty)
        #expect(hub.world.cipher.isShredded(.conversation(hub.org.id, room)))
        let purge = try #require(hub.world.audit.events.last { $0.action == "conversation.purged" })
        #expect(purge.detail == "messages=3 attachments=2 key=shredded reason=end export=directory:/var/lib/carehub/exports (encrypted)")
        #expect(!purge.detail.contains("referral"))
    }

    @Test func aHIPAAWebhookExportDescribesTheFilesWithoutNamesOrBytes() async throws {
        let (hub, _, ready, _) = try await endedChat(Self.webhook)
        let export = try #require(hub.world.exporter.exports.first)
        let file = try #require(export.transcript.lines.compactMap(\.attachment).first)
        #expect(file.id == ready && file.name == nil && file.bytes == nil)
        #expect(file.size == Self.file.count && file.contentType == "application/pdf")
        let json = export.transcript.json()
        #expect(!json.contains("referral") && !json.contains("lab-results") && !json.contains("\"data\""))
        #expect(hub.world.attachments.all.isEmpty)
    }

    @Test func aPlainExportOutsideHIPAAModeNamesTheFilesButCarriesNoBytes() async throws {
        let (hub, _, _, _) = try await endedChat(Self.plainDirectory)
        let export = try #require(hub.world.exporter.exports.first)
        #expect(export.target == .directory(path: "/var/lib/carehub/exports", certificate: nil))
        let files = export.transcript.lines.compactMap(\.attachment)
        #expect(files.map(\.name) == ["referral-jane-doe.pdf", "lab-results.pdf"])
        #expect(files.allSatisfy { $0.bytes == nil })
        #expect(!export.transcript.json().contains("\"data\""))
        #expect(hub.world.attachments.all.isEmpty)
    }
}
