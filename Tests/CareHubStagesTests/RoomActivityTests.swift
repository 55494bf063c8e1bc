import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Testing

@Suite("room activity")
struct RoomActivityTests {
    static let assignedConfig = StageHarness.hipaaConfig.replacingOccurrences(of: "hipaa = on", with: "hipaa = on\nstaff_access = assigned")

    private func activity(to connection: Int, in hub: StageHarness) -> [RoomActivity] {
        hub.delivered(to: connection).compactMap { if case .roomActivity(let activity) = $0 { activity } else { nil } }
    }

    @Test func unsubscribedStaffHearOfEveryMessageWithoutItsText() async throws {
        let hub = try StageHarness()
        _ = await hub.login(2)
        let room = try await hub.visitor(1)
        let opened = try #require(activity(to: 2, in: hub).last)
        #expect(opened.event == .opened && opened.room == room && opened.unanswered == 0 && opened.waitingSince == nil && opened.lastFrom == nil)

        let firstAt = hub.world.clock.now
        _ = await hub.run(.send(room: room, text: "my chest hurts"), from: 1)
        hub.world.clock.advance(by: 60)
        _ = await hub.run(.send(room: room, text: "still there?"), from: 1)
        let waiting = try #require(activity(to: 2, in: hub).last)
        #expect(waiting.event == .message && waiting.unanswered == 2 && waiting.lastFrom == .visitor)
        #expect(waiting.waitingSince == firstAt && waiting.lastAt == hub.world.clock.now && waiting.startedAt == opened.startedAt)
        // Not subscribed: no message frame, only activity, and nothing in it is the patient's.
        #expect(!hub.delivered(to: 2).contains { if case .message = $0 { true } else { false } })
        #expect(!hub.delivered(to: 2).map { $0.json() }.contains { $0.contains("chest") || $0.contains("still") })

        _ = await hub.run(.subscribe(room: room), from: 2)
        _ = await hub.run(.send(room: room, text: "on my way"), from: 2)
        let answered = try #require(activity(to: 2, in: hub).last)
        #expect(answered.unanswered == 0 && answered.waitingSince == nil && answered.lastFrom == .staff)

        _ = await hub.run(.end(room: room), from: 2)
        let ended = try #require(activity(to: 2, in: hub).last)
        #expect(ended.event == .ended && ended.ended && ended.unanswered == 0)
    }

    @Test func visitorsAndOtherOrganisationsHearNothing() async throws {
        let hub = try StageHarness()
        let other = try StageHarness(StageHarness.wellnessConfig, staff: [("kim", .staff, "kim-password-long")])
        _ = await other.login(9, user: "kim", password: "kim-password-long")
        let room = try await hub.visitor(1)
        _ = try await hub.visitor(3)
        _ = await hub.run(.send(room: room, text: "hello"), from: 1)
        #expect(activity(to: 1, in: hub).isEmpty)
        #expect(activity(to: 3, in: hub).isEmpty)
        #expect(activity(to: 9, in: other).isEmpty)
    }

    @Test func underAssignedAccessOnlyTheAssigneeAndAdminsHear() async throws {
        let hub = try StageHarness(Self.assignedConfig, staff: [("joy", .staff, "joy-password"), ("sam", .staff, "sam-password"), ("ada", .admin, "ada-password")])
        _ = await hub.login(2)
        _ = await hub.login(4, user: "sam", password: "sam-password")
        _ = await hub.login(3, user: "ada", password: "ada-password")
        let room = try await hub.visitor(1)
        _ = await hub.run(.send(room: room, text: "hello"), from: 1)
        #expect(activity(to: 2, in: hub).isEmpty)
        #expect(activity(to: 3, in: hub).map(\.event) == [.opened, .message])

        _ = await hub.run(.assign(room: room, user: "joy"), from: 3)
        _ = await hub.run(.send(room: room, text: "hello again"), from: 1)
        let joy = activity(to: 2, in: hub)
        #expect(joy.map(\.event) == [.assigned, .message])
        #expect(joy.last?.assignedTo == "joy" && joy.last?.unanswered == 2)
        #expect(activity(to: 4, in: hub).isEmpty)
        #expect(activity(to: 3, in: hub).last?.unanswered == 2)
    }

    @Test func aRoomFirstSeenAfterARestartIsFilledFromItsHistory() async throws {
        let hub = try StageHarness()
        let room = try await hub.visitor(1)
        _ = await hub.run(.send(room: room, text: "one"), from: 1)
        _ = await hub.run(.send(room: room, text: "two"), from: 1)
        hub.world.activity.forget(room)  // what a restart forgets
        _ = await hub.login(2)
        _ = await hub.run(.send(room: room, text: "three"), from: 1)
        #expect(activity(to: 2, in: hub).last?.unanswered == 3)
    }

    @Test func theRoomListCarriesActivityAndOnRequestTheVisitorsNameAndReasonOnTheRecord() async throws {
        let hub = try StageHarness()
        let profile = VisitorProfile(fields: ["name": "Ada Lovelace", "email": "ada@example.org", "reason": "refill"])
        let room = try expectWelcome(await hub.run(.hello(org: hub.org.id, token: nil, profile: profile), from: 1)).room
        _ = await hub.run(.send(room: room, text: "hello"), from: 1)
        _ = await hub.login(2)
        guard case .rooms(_, let unnamed, _) = await hub.run(.rooms(), from: 2) else {
            Issue.record("no rooms reply")
            throw PipelineError.internal
        }
        #expect(unnamed.first?.visitorName == nil && unnamed.first?.activity?.unanswered == 1)
        #expect(!hub.world.audit.events.contains { $0.action == "phi.read" })
        guard case .rooms(_, let rooms, let orgName) = await hub.run(.rooms(visitors: true), from: 2) else {
            Issue.record("no rooms reply")
            throw PipelineError.internal
        }
        let entry = try #require(rooms.first)
        #expect(orgName == "Riverside Clinic")
        #expect(entry.visitorName == "Ada Lovelace" && entry.visitorReason == "refill")
        #expect(entry.activity?.unanswered == 1 && entry.activity?.lastFrom == .visitor)
        let json = ServerFrame.rooms(id: nil, rooms: rooms, orgName: orgName).json()
        #expect(!json.contains("ada@example.org"))
        #expect(hub.world.audit.events.contains { $0.action == "phi.read" && $0.target == "rooms" && $0.detail == "profiles=1 rooms=\(room.rawValue)" })
    }

    @Test func staffHearWhenTheHubEndsAnAbandonedChat() async throws {
        let hub = try StageHarness(StageHarness.hipaaConfig
            .replacingOccurrences(of: "stage purge on=end", with: "stage purge on=end abandon=5m")
            .replacingOccurrences(of: "timeout=10m", with: "timeout=15m"))
        _ = await hub.login(2)
        let room = try await hub.visitor(1)
        _ = await hub.run(.send(room: room, text: "brb"), from: 1)
        _ = await hub.run(.send(room: room, text: "Take your time"), from: 2)
        hub.world.rooms.leaveAll(connection: ConnectionID(1))
        await hub.pipeline.tick(at: hub.world.clock.now)
        hub.world.clock.advance(by: 6 * 60)
        await hub.pipeline.tick(at: hub.world.clock.now)
        let ended = try #require(activity(to: 2, in: hub).last)
        #expect(ended.event == .ended && ended.ended && ended.room == room && ended.waitingSince == nil && ended.unanswered == 0)
        #expect(ended.lastAt == hub.world.clock.now)
    }

    @Test func theActivityFrameHasItsWireShape() {
        let activity = RoomActivity(
            room: ConversationID("c_1"), event: .message, startedAt: Date(timeIntervalSince1970: 1), lastAt: Date(timeIntervalSince1970: 3),
            lastFrom: .visitor, waitingSince: Date(timeIntervalSince1970: 2), unanswered: 2, assignedTo: "joy")
        #expect(ServerFrame.roomActivity(activity).json()
            == #"{"type":"room_activity","room":"c_1","event":"message","startedAt":1000,"lastAt":3000,"lastFrom":"visitor","waitingSince":2000,"unanswered":2,"ended":false,"assignedTo":"joy"}"#)
    }
}
