import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Testing

@Suite("encrypt stage: sealing what was stored before HIPAA mode")
struct SealStoredTests {
    @Test func plainMessagesAndFormsAreSealedSoReadersOpenThemAsAnyOther() async throws {
        let world = TestWorld()
        let org = OrgID("clinic")
        let room = try await world.conversations.create(org: org, tokenDigest: [1], at: world.clock.now).id
        try await world.conversations.setProfile(room, .plain(#"{"name":"Pat"}"#))
        try await world.conversations.requestTranscript(room, to: "pat@example.org")
        for seq in 1...3 {
            try await world.messages.append(StoredMessage(conversation: room, seq: UInt64(seq), sender: "visitor", at: world.clock.now, body: .plain("hello \(seq)")))
        }
        let sealed = try await EncryptStage.sealStored(org: org, environment: world.environment)
        #expect(sealed.messages == 3 && sealed.forms == 1)
        #expect(try await world.messages.plainMessages(of: room, limit: 10).isEmpty)
        guard case .sealed? = try await world.conversations.profile(of: room) else {
            Issue.record("the form is still plain")
            throw PipelineError.internal
        }
        #expect(try await world.conversations.conversation(room)?.transcriptTo == nil, "a HIPAA organisation sends no transcript e-mail")
        // Sealed with the associated data a reader opens them with.
        for message in world.messages.all {
            guard case .sealed(let box) = message.body else { throw PipelineError.internal }
            let aad = SealedHistory.messageAssociatedData(org: org, conversation: room, seq: message.seq, sender: message.sender)
            let text = try await world.cipher.open(box, scope: .conversation(org, room), associatedData: aad)
            #expect(String(decoding: text, as: UTF8.self) == "hello \(message.seq)")
        }
        // Again: nothing left to seal, nothing sealed twice.
        let again = try await EncryptStage.sealStored(org: org, environment: world.environment)
        #expect(again.messages == 0 && again.forms == 0)
    }

    @Test func plainFilesAreSealedChunkByChunkAndOpenToTheirBytes() async throws {
        let world = TestWorld()
        let org = OrgID("clinic")
        let room = try await world.conversations.create(org: org, tokenDigest: [1], at: world.clock.now).id
        let file = (0..<(Attachment.chunkSize * 20 + 5)).map { UInt8(truncatingIfNeeded: $0) }
        let id = AttachmentID.random()
        try await world.attachments.begin(Attachment(
            id: id, org: org, conversation: room, sender: "visitor", name: .plain("rash.png"), contentType: "image/png", at: world.clock.now))
        let count = Attachment.chunkCount(forSize: file.count)
        for index in 0..<count {
            let end = min(file.count, (index + 1) * Attachment.chunkSize)
            try await world.attachments.appendChunk(id, index: index, .plain(Array(file[(index * Attachment.chunkSize)..<end])))
        }
        try await world.attachments.finish(
            id, state: .ready, size: file.count, contentType: "image/png",
            message: StoredMessage(conversation: room, seq: 1, sender: "visitor", at: world.clock.now, body: .plain(""), attachment: id), recording: [])

        let sealed = try await EncryptStage.sealStored(org: org, environment: world.environment)
        #expect(sealed == EncryptStage.SealedRecords(messages: 1, forms: 0, files: 1))
        #expect(sealed.detail == "messages=1 forms=0 files=1")
        let history = SealedHistory(org: org, environment: world.environment)
        let stored = try #require(try await world.attachments.attachment(id))
        #expect(await history.openAttachmentName(stored.name, id: id, in: room) == .plain("rash.png"))
        var opened: [UInt8] = []
        for index in 0..<count {
            let chunk = try #require(try await world.attachments.chunk(id, index: index))
            #expect({ if case .sealed = chunk { true } else { false } }(), "chunk \(index) is sealed")
            opened += try await history.openAttachmentChunk(chunk, id: id, index: index, last: index == count - 1, in: room)
        }
        #expect(opened == file)
        #expect(try await EncryptStage.sealStored(org: org, environment: world.environment) == EncryptStage.SealedRecords())
    }
}
