import CareHubCore
import CareHubServer
import CareHubStorage
import CareHubTesting
import Foundation
import Testing

/// The front desk's part of the ``ConversationStore`` contract, run against the SQLite store, the
/// hub's cache in front of it, the PostgreSQL store and the in-memory double the stage tests use.
@Suite("front desk: conversation store contract")
struct FrontDeskStoreContractTests {
    let org = OrgID("clinic")
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    func stores() async throws -> [(name: String, store: any ConversationStore, keep: Any)] { try await conversationStoresUnderTest() }

    @Test func aClaimSucceedsOnlyForTheFirstClaimer() async throws {
        for (name, store, _) in try await stores() {
            let room = try await store.create(org: org, tokenDigest: [1], at: at).id
            #expect(try await store.claim(room, by: "joy") == "joy", "\(name)")
            #expect(try await store.claim(room, by: "kim") == "joy", "\(name)")
            #expect(try await store.claim(room, by: "joy") == "joy", "\(name)")
            #expect(try await store.conversation(room)?.assignedTo == "joy", "\(name)")
            #expect(try await store.claim(ConversationID("c_missing"), by: "joy") == nil, "\(name)")
            // Back in the queue, the next claim wins again.
            try await store.assign(room, to: nil)
            #expect(try await store.claim(room, by: "kim") == "kim", "\(name)")
        }
    }

    @Test func concurrentClaimsGiveTheRoomToExactlyOne() async throws {
        for (name, store, _) in try await stores() {
            let room = try await store.create(org: org, tokenDigest: [2], at: at).id
            let holders = try await withThrowingTaskGroup(of: String?.self) { group in
                for user in ["a", "b", "c", "d", "e", "f"] { group.addTask { try await store.claim(room, by: user) } }
                return try await group.reduce(into: [String?]()) { $0.append($1) }
            }
            let owner = try #require(try await store.conversation(room)?.assignedTo)
            #expect(Set(holders) == [owner], "\(name): every claimer is told the one owner")
        }
    }

    @Test func readReceiptsOnlyGrow() async throws {
        for (name, store, _) in try await stores() {
            let room = try await store.create(org: org, tokenDigest: [3], at: at).id
            #expect(try await store.conversation(room)?.readSeq == 0, "\(name)")
            #expect(try await store.markRead(room, seq: 3) == true, "\(name)")
            #expect(try await store.markRead(room, seq: 2) == false, "\(name)")
            #expect(try await store.markRead(room, seq: 3) == false, "\(name)")
            #expect(try await store.conversation(room)?.readSeq == 3, "\(name)")
        }
    }

    @Test func aHandOverIsKeptAndItsNoteErasedWithTheForm() async throws {
        for (name, store, _) in try await stores() {
            let room = try await store.create(org: org, tokenDigest: [4], at: at, offline: true)
            #expect(room.offline, "\(name)")
            #expect(try await store.conversation(room.id)?.offline == true, "\(name)")
            #expect(try await store.handoff(of: room.id) == nil, "\(name)")
            let sealed = Handoff(from: "joy", to: "kim", at: at, note: .sealed(SealedText(keyID: "k1", bytes: [1, 2, 3])))
            try await store.setHandoff(room.id, sealed)
            #expect(try await store.handoff(of: room.id) == sealed, "\(name)")
            let queued = Handoff(from: "kim", to: nil, at: at.addingTimeInterval(60), note: .plain("call back at 4"))
            try await store.setHandoff(room.id, queued)
            #expect(try await store.handoff(of: room.id) == queued, "\(name)")
            try await store.eraseProfile(room.id)
            let erased = try await store.handoff(of: room.id)
            #expect(erased?.note == nil && erased?.from == "kim", "\(name)")
        }
    }
}
