import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Testing

@Suite("auth stage: an organisation's limits on new conversations and messages")
struct OrgLimitTests {
    static func studio(_ limits: String) -> String {
        "[org studio]\nhipaa = off\n\(limits)\nstage auth\nstage store\nstage fanout\n"
    }

    @Test func newConversationsAreLimitedPerAddressAndPerOrganisation() async throws {
        let hub = try StageHarness(Self.studio("limits conversations_per_minute=4 conversations_per_address_per_minute=2"))
        func hello(from peer: String, connection: Int) async -> ErrorCode? {
            await hub.errorCode(of: hub.world.request(.hello(org: hub.org.id, token: nil), connection: ConnectionID(UInt64(connection)), peer: peer))
        }
        #expect(await hello(from: "192.0.2.1", connection: 1) == nil)
        #expect(await hello(from: "192.0.2.1", connection: 2) == nil)
        #expect(await hello(from: "192.0.2.1", connection: 3) == .rateLimited)
        #expect(await hello(from: "192.0.2.2", connection: 4) == nil)
        #expect(await hello(from: "192.0.2.3", connection: 5) == nil)
        #expect(await hello(from: "192.0.2.4", connection: 6) == .rateLimited, "the organisation's own limit")
        #expect(try await hub.world.conversations.list(org: hub.org.id, limit: 100).count == 4)
    }

    @Test func messagesPerConversationAreLimitedAndOnlyTheSendersOwnRoomIsCharged() async throws {
        let hub = try StageHarness(Self.studio("limits messages_per_second=1 message_burst=3"))
        let room = try await hub.visitor(1)
        let other = try await hub.visitor(2)
        // A visitor naming someone else's room is refused and spends nothing of that room's allowance.
        for _ in 0..<5 { #expect(await hub.run(.send(room: other, text: "x"), from: 1).errorCode == .forbidden) }
        for _ in 0..<3 { #expect(await hub.run(.send(room: room, text: "hi"), from: 1).errorCode == nil) }
        #expect(await hub.run(.send(room: room, text: "hi"), from: 1).errorCode == .rateLimited)
        #expect(await hub.run(.send(room: other, text: "mine"), from: 2).errorCode == nil)
        hub.world.clock.advance(by: 1)
        #expect(await hub.run(.send(room: room, text: "again"), from: 1).errorCode == nil)
    }
}
