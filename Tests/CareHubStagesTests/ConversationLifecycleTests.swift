import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Testing

@Suite("conversation lifecycle")
struct ConversationLifecycleTests {
    let org = OrgID("clinic")

    @Test func endingClosesTheRoomTellsItsMembersAndLeavesTheQueue() async throws {
        let world = TestWorld()
        let environment = world.environment
        let lifecycle = environment.conversationLifecycle
        let conversation = try await world.conversations.create(org: org, tokenDigest: [1], at: world.clock.now)
        let other = try await world.conversations.create(org: org, tokenDigest: [2], at: world.clock.now)
        for (connection, room) in [(1, conversation.id), (2, conversation.id), (3, other.id)] {
            world.rooms.join(room, member: RoomMember(connection: ConnectionID(UInt64(connection)), sessionToken: "t\(connection)"))
        }
        environment.frontDesk.queue.load(org, [(conversation.id, world.clock.now), (other.id, world.clock.now)])
        world.clock.advance(by: 60)

        let ended = try await lifecycle.end(conversation, at: world.clock.now)
        #expect(ended.endedAt == world.clock.now)
        #expect(try await world.conversations.conversation(conversation.id)?.endedAt == world.clock.now)
        #expect(world.rooms.members(of: conversation.id).isEmpty)
        for connection in [1, 2] {
            #expect(world.rooms.frames(to: ConnectionID(UInt64(connection))) == [.ended(id: nil, room: conversation.id)])
        }
        #expect(world.rooms.frames(to: ConnectionID(3)).filter { if case .ended = $0 { true } else { false } }.isEmpty)
        #expect(!environment.frontDesk.queue.contains(conversation.id, org: org))
        #expect(environment.frontDesk.queue.contains(other.id, org: org))
        #expect(world.rooms.members(of: other.id).count == 1)
    }

    @Test func endingAnEndedConversationKeepsItsEndTime() async throws {
        let world = TestWorld()
        let lifecycle = world.environment.conversationLifecycle
        let conversation = try await world.conversations.create(org: org, tokenDigest: [1], at: world.clock.now)
        let first = try await lifecycle.end(conversation, at: world.clock.now)
        world.clock.advance(by: 60)
        let again = try await lifecycle.end(first, at: world.clock.now)
        #expect(again.endedAt == first.endedAt)
        #expect(try await world.conversations.conversation(conversation.id)?.endedAt == first.endedAt)
    }

    @Test func erasingDeletesTheTextShredsTheKeyAndAuditsWithoutContent() async throws {
        let world = TestWorld()
        let lifecycle = world.environment.conversationLifecycle
        let room = try await world.conversations.create(org: org, tokenDigest: [1], at: world.clock.now).id
        let kept = try await world.conversations.create(org: org, tokenDigest: [2], at: world.clock.now).id
        for seq in 1...2 {
            try await world.messages.append(StoredMessage(conversation: room, seq: UInt64(seq), sender: "visitor", at: world.clock.now, body: .plain("pain \(seq)")))
        }
        try await world.messages.append(StoredMessage(conversation: kept, seq: 1, sender: "visitor", at: world.clock.now, body: .plain("other")))
        try await world.conversations.setProfile(room, .plain(#"{"name":"Pat"}"#))

        try await lifecycle.erase(room, org: org, actor: "ada", address: "10.0.0.9", detail: "reason=hipaa_off export=none")
        #expect(world.messages.all.map(\.conversation) == [kept])
        #expect(try await world.conversations.profile(of: room) == nil)
        #expect(world.cipher.isShredded(.conversation(org, room)))
        #expect(!world.cipher.isShredded(.conversation(org, kept)))
        #expect(try await world.conversations.unpurged(org: org, startedBefore: .distantFuture, limit: 10).map(\.id) == [kept])
        let event = try #require(world.audit.events.last)
        #expect(event.action == "conversation.purged" && event.target == room.rawValue)
        #expect(event.actor == "ada" && event.address == "10.0.0.9" && event.org == org)
        #expect(event.detail == "messages=2 key=shredded reason=hipaa_off export=none")
        #expect(!event.detail.contains("pain") && !event.detail.contains("Pat"))
    }

    @Test func erasingTakesTheAttachmentsWithTheChatAndNoCopyOfASealedChunkOpensAfterTheShred() async throws {
        let world = TestWorld()
        let lifecycle = world.environment.conversationLifecycle
        let history = SealedHistory(org: org, environment: world.environment)
        let room = try await world.conversations.create(org: org, tokenDigest: [1], at: world.clock.now).id
        let kept = try await world.conversations.create(org: org, tokenDigest: [2], at: world.clock.now).id
        func attach(_ room: ConversationID, seq: UInt64) async throws -> CareHubCore.Attachment {
            let id = AttachmentID.random()
            let record = CareHubCore.Attachment(
                id: id, org: org, conversation: room, sender: "visitor", name: .plain("x-ray.png"), contentType: "image/png", at: world.clock.now)
            try await world.attachments.begin(record)
            let sealed = try await world.cipher.seal(
                Array("PIXELS".utf8), scope: .conversation(org, room), associatedData: CareHubCore.Attachment.chunkAssociatedData(id, index: 0, last: true))
            try await world.attachments.appendChunk(id, index: 0, .sealed(sealed))
            try await world.attachments.finish(
                id, state: .ready, size: 6, contentType: "image/png",
                message: StoredMessage(conversation: room, seq: seq, sender: "visitor", at: world.clock.now, body: .plain(""), attachment: id), recording: [])
            return try #require(try await world.attachments.attachment(id))
        }
        let erased = try await attach(room, seq: 1)
        let other = try await attach(kept, seq: 1)
        // A copy of the stored chunk, as an old backup keeps it: it opens while the key lives.
        let copy = try #require(try await world.attachments.chunk(erased.id, index: 0))
        #expect(try await history.openAttachmentChunk(copy, id: erased.id, index: 0, last: true, in: room) == Array("PIXELS".utf8))

        try await lifecycle.erase(room, org: org, actor: "system", address: "", detail: "reason=end export=none")
        #expect(try await world.attachments.attachments(of: room).isEmpty)
        #expect(try await world.attachments.chunk(erased.id, index: 0) == nil)
        #expect(world.messages.all.map(\.conversation) == [kept])
        await #expect(throws: (any Error).self) { try await history.openAttachmentChunk(copy, id: erased.id, index: 0, last: true, in: room) }
        // The other conversation's file is untouched and still opens.
        let theirs = try #require(try await world.attachments.chunk(other.id, index: 0))
        #expect(try await history.openAttachmentChunk(theirs, id: other.id, index: 0, last: true, in: kept) == Array("PIXELS".utf8))
        #expect(world.audit.events.last?.detail == "messages=1 attachments=1 key=shredded reason=end export=none")
    }
}
