import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Testing

@Suite("sealed history")
struct SealedHistoryTests {
    let org = OrgID("clinic")

    func newRoom(in world: TestWorld) async throws -> ConversationID {
        try await world.conversations.create(org: org, tokenDigest: [1], at: world.clock.now).id
    }

    func message(_ room: ConversationID, seq: UInt64, from sender: String, _ body: MessageBody, at date: Date) -> StoredMessage {
        StoredMessage(conversation: room, seq: seq, sender: sender, at: date, body: body)
    }

    @Test func aSealedMessageOpensToItsTextOnlyInItsOwnPlace() async throws {
        let world = TestWorld()
        let history = SealedHistory(org: org, environment: world.environment)
        let room = try await newRoom(in: world)
        let other = try await newRoom(in: world)
        let sealed = try await history.sealMessage("my knee hurts", in: room, seq: 7, sender: "visitor")
        let now = world.clock.now
        #expect(await history.open(message(room, seq: 7, from: "visitor", .sealed(sealed), at: now)).body == .plain("my knee hurts"))
        // Moved to another row, sender, conversation or organisation, it does not open.
        #expect(await history.open(message(room, seq: 8, from: "visitor", .sealed(sealed), at: now)).body == .unreadable)
        #expect(await history.open(message(room, seq: 7, from: "joy", .sealed(sealed), at: now)).body == .unreadable)
        #expect(await history.open(message(other, seq: 7, from: "visitor", .sealed(sealed), at: now)).body == .unreadable)
        let elsewhere = SealedHistory(org: OrgID("other"), environment: world.environment)
        #expect(await elsewhere.open(message(room, seq: 7, from: "visitor", .sealed(sealed), at: now)).body == .unreadable)
        // Plain text (an organisation without the encrypt stage) is returned as it is.
        #expect(await history.open(message(room, seq: 9, from: "visitor", .plain("hi"), at: now)).body == .plain("hi"))
    }

    @Test func anAttachmentsChunksOpenOnlyInTheirPlaceAndAFileCannotBeCutShort() async throws {
        let world = TestWorld()
        let history = SealedHistory(org: org, environment: world.environment)
        let room = try await newRoom(in: world)
        let id = AttachmentID.random()
        let first = try await history.sealAttachmentChunk(Array("first".utf8), id: id, index: 0, last: false, in: room)
        let second = try await history.sealAttachmentChunk(Array("second".utf8), id: id, index: 1, last: true, in: room)
        #expect(try await history.openAttachmentChunk(.sealed(first), id: id, index: 0, last: false, in: room) == Array("first".utf8))
        #expect(try await history.openAttachmentChunk(.sealed(second), id: id, index: 1, last: true, in: room) == Array("second".utf8))
        // Swapped, moved to another file, or the file cut after its first chunk: nothing opens.
        await #expect(throws: (any Error).self) { try await history.openAttachmentChunk(.sealed(second), id: id, index: 0, last: false, in: room) }
        await #expect(throws: (any Error).self) { try await history.openAttachmentChunk(.sealed(first), id: .random(), index: 0, last: false, in: room) }
        await #expect(throws: (any Error).self) { try await history.openAttachmentChunk(.sealed(first), id: id, index: 0, last: true, in: room) }
        // The name opens only as this attachment's.
        let name = try await history.sealAttachmentName("referral.pdf", id: id, in: room)
        #expect(await history.openAttachmentName(.sealed(name), id: id, in: room) == .plain("referral.pdf"))
        #expect(await history.openAttachmentName(.sealed(name), id: .random(), in: room) == .unreadable)
        // Shredding the conversation's key makes every chunk unreadable for good.
        try await world.environment.cipher.shred(.conversation(org, room))
        await #expect(throws: (any Error).self) { try await history.openAttachmentChunk(.sealed(first), id: id, index: 0, last: false, in: room) }
    }

    @Test func aFormAndANoteOpenOnlyAsWhatTheyWereSealedAs() async throws {
        let world = TestWorld()
        let history = SealedHistory(org: org, environment: world.environment)
        let room = try await newRoom(in: world)
        let form = try await history.sealProfile(Array(#"{"name":"Pat"}"#.utf8), of: room)
        let note = try await history.sealNote("call back after 3", of: room)
        #expect(await history.openProfile(.sealed(form), of: room) == .plain(#"{"name":"Pat"}"#))
        #expect(await history.openNote(.sealed(note), of: room) == .plain("call back after 3"))
        #expect(await history.openProfile(.sealed(note), of: room) == .unreadable)
        #expect(await history.openNote(.sealed(form), of: room) == .unreadable)
        #expect(await history.openProfile(.plain("{}"), of: room) == .plain("{}"))
    }

    @Test func theTranscriptOpensEveryLineAndTheFormAndLeavesWhatDoesNotOpenEmpty() async throws {
        let world = TestWorld()
        let history = SealedHistory(org: org, environment: world.environment)
        let room = try await newRoom(in: world)
        let now = world.clock.now
        try await world.messages.append(message(room, seq: 1, from: "visitor", .sealed(try await history.sealMessage("hello", in: room, seq: 1, sender: "visitor")), at: now))
        try await world.messages.append(message(room, seq: 2, from: "joy", .plain("how can I help?"), at: now))
        // Sealed for another row: it must not open as this one.
        try await world.messages.append(message(room, seq: 3, from: "visitor", .sealed(try await history.sealMessage("moved", in: room, seq: 9, sender: "visitor")), at: now))
        try await world.conversations.setProfile(room, .sealed(try await history.sealProfile(Array(#"{"name":"Pat"}"#.utf8), of: room)))
        var conversation = try #require(try await world.conversations.conversation(room))
        conversation.endedAt = now
        let transcript = try await history.transcript(of: conversation)
        #expect(transcript.org == org && transcript.conversation == room && transcript.endedAt == now)
        #expect(transcript.lines.map(\.seq) == [1, 2, 3])
        #expect(transcript.lines.map(\.text) == ["hello", "how can I help?", nil])
        #expect(transcript.lines.map(\.from) == ["visitor", "joy", "visitor"])
        #expect(transcript.profileJSON == #"{"name":"Pat"}"#)
    }

    @Test func afterTheKeyIsShreddedNothingOpens() async throws {
        let world = TestWorld()
        let history = SealedHistory(org: org, environment: world.environment)
        let room = try await newRoom(in: world)
        try await world.messages.append(message(room, seq: 1, from: "visitor", .sealed(try await history.sealMessage("hello", in: room, seq: 1, sender: "visitor")), at: world.clock.now))
        try await world.conversations.setProfile(room, .sealed(try await history.sealProfile(Array("{}".utf8), of: room)))
        try await world.cipher.shred(.conversation(org, room))
        let transcript = try await history.transcript(of: try #require(try await world.conversations.conversation(room)))
        #expect(transcript.lines.map(\.text) == [nil])
        #expect(transcript.profileJSON == nil)
    }

    @Test func aFileNameAndItsChunksOpenOnlyAsWhatAndWhereTheyWereSealed() async throws {
        let world = TestWorld()
        let history = SealedHistory(org: org, environment: world.environment)
        let room = try await newRoom(in: world)
        let id = AttachmentID.random()
        let scope = KeyScope.conversation(org, room)
        let name = try await world.cipher.seal(Array("referral.pdf".utf8), scope: scope, associatedData: CareHubCore.Attachment.nameAssociatedData(id))
        let record = CareHubCore.Attachment(id: id, org: org, conversation: room, sender: "visitor", name: .sealed(name), contentType: "application/pdf", at: world.clock.now)
        #expect(await history.openAttachmentName(record.name, id: record.id, in: room) == .plain("referral.pdf"))
        var moved = CareHubCore.Attachment(id: .random(), org: org, conversation: room, sender: "visitor", name: .sealed(name), contentType: "", at: world.clock.now)
        #expect(await history.openAttachmentName(moved.name, id: moved.id, in: room) == .unreadable)
        moved.name = .plain("plain.pdf")
        #expect(await history.openAttachmentName(moved.name, id: moved.id, in: room) == .plain("plain.pdf"))

        let first = try await world.cipher.seal([1, 2], scope: scope, associatedData: CareHubCore.Attachment.chunkAssociatedData(id, index: 0, last: false))
        #expect(try await history.openAttachmentChunk(.sealed(first), id: id, index: 0, last: false, in: room) == [1, 2])
        // Moved to another position, or made the last (the file cut off after it): it does not open.
        await #expect(throws: (any Error).self) { try await history.openAttachmentChunk(.sealed(first), id: id, index: 1, last: true, in: room) }
        await #expect(throws: (any Error).self) { try await history.openAttachmentChunk(.sealed(first), id: id, index: 0, last: true, in: room) }
        #expect(try await history.openAttachmentChunk(.plain([3]), id: id, index: 0, last: true, in: room) == [3])
    }
}
