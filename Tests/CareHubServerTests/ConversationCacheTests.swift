import CareHubCore
import CareHubServer
import CareHubStorage
import CareHubTesting
import Foundation
import Testing

@Suite("conversation cache over real SQLite")
struct ConversationCacheTests {
    let org = OrgID("clinic")

    @Test func theHubsOwnChangesAreSeenAtOnce() async throws {
        let fixture = try KeyFixture()
        let clock = ManualClock()
        let cache = ConversationCache(SQLiteConversationStore(database: fixture.database), clock: clock, lifetime: 60)
        let room = try await cache.create(org: org, tokenDigest: [1], at: clock.now).id
        #expect(try await cache.conversation(room)?.hasEnded == false)
        try await cache.assign(room, to: "joy")
        #expect(try await cache.conversation(room)?.assignedTo == "joy")
        try await cache.markEnded(room, at: clock.now)
        #expect(try await cache.conversation(room)?.hasEnded == true)
        #expect(try await cache.conversation(ConversationID("c_missing")) == nil)
    }

    @Test func aChangeMadeOutsideTheHubIsSeenWithinTheLifetimeOrAtTheNextRoomList() async throws {
        let fixture = try KeyFixture()
        let clock = ManualClock()
        let database = SQLiteConversationStore(database: fixture.database)
        let cache = ConversationCache(database, clock: clock, lifetime: 1)
        let room = try await cache.create(org: org, tokenDigest: [2], at: clock.now).id
        _ = try await cache.conversation(room)
        // `carehub conversations assign`: another writer on the same database.
        try await database.assign(room, to: "joy")
        #expect(try await cache.conversation(room)?.assignedTo == nil)
        clock.advance(by: 1)
        #expect(try await cache.conversation(room)?.assignedTo == "joy")

        try await database.assign(room, to: "max")
        #expect(try await cache.conversation(room)?.assignedTo == "joy")
        #expect(try await cache.list(org: org, limit: 10).first?.assignedTo == "max")
        #expect(try await cache.conversation(room)?.assignedTo == "max")
    }

    @Test func keepsAtMostItsCapacity() async throws {
        let fixture = try KeyFixture()
        let clock = ManualClock()
        let cache = ConversationCache(SQLiteConversationStore(database: fixture.database), clock: clock, lifetime: 60, capacity: 3)
        var rooms: [ConversationID] = []
        for index in 0..<5 { rooms.append(try await cache.create(org: org, tokenDigest: [UInt8(index)], at: clock.now).id) }
        #expect(cache.count <= 3)
        for room in rooms { #expect(try await cache.conversation(room)?.id == room) }
        #expect(cache.count <= 3)
    }
}
