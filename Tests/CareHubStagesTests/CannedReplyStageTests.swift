import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Testing

@Suite("canned replies in the pipeline")
struct CannedReplyStageTests {
    private func store(_ name: String, _ text: String, in hub: StageHarness, org: OrgID? = nil) async throws {
        let org = org ?? hub.org.id
        let saved = try await hub.world.replies.save(
            CannedReply(name: name, text: text), org: org, by: "ada", at: hub.world.clock.now, limit: CannedReply.maxPerOrg,
            recording: AuditEvent(at: hub.world.clock.now, org: org, actor: "ada", address: "local", action: "reply.saved"))
        #expect(saved == .created)
    }

    @Test func staffListTheirOrganisationsRepliesByName() async throws {
        let hub = try StageHarness()
        try await store("parking", "Behind the building.", in: hub)
        try await store("hours", "We open at 8.", in: hub)
        try await store("elsewhere", "Another clinic's reply.", in: hub, org: OrgID("studio"))
        #expect(await hub.login(2).isSession)
        #expect(await hub.run(.replies, from: 2, id: "r1") == .replies(id: "r1", replies: [
            CannedReply(name: "hours", text: "We open at 8."), CannedReply(name: "parking", text: "Behind the building."),
        ]))
    }

    @Test func visitorsAndConnectionsWithoutASessionMayNotListReplies() async throws {
        let hub = try StageHarness()
        try await store("hours", "We open at 8.", in: hub)
        _ = try await hub.visitor(1)
        let refused = await hub.run(.replies, from: 1, id: "v1")
        #expect(refused == .error(id: "v1", error: PipelineError.forbidden("only staff may list canned replies")))
        #expect(await hub.run(.replies, from: 3).errorCode == .unauthenticated)
    }

    @Test func anOrganisationHoldsAtMost200() async throws {
        #expect(CannedReply.maxPerOrg == 200)
        let hub = try StageHarness()
        for index in 1...CannedReply.maxPerOrg { try await store(String(format: "reply %03d", index), "text", in: hub) }
        let event = AuditEvent(at: hub.world.clock.now, org: hub.org.id, actor: "ada", address: "local", action: "reply.saved")
        let overflow = try await hub.world.replies.save(
            CannedReply(name: "reply 201", text: "text"), org: hub.org.id, by: "ada", at: hub.world.clock.now, limit: CannedReply.maxPerOrg, recording: event)
        #expect(overflow == .full)
        let replaced = try await hub.world.replies.save(
            CannedReply(name: "reply 200", text: "new"), org: hub.org.id, by: "ada", at: hub.world.clock.now, limit: CannedReply.maxPerOrg, recording: event)
        #expect(replaced == .replaced)
        #expect(await hub.login(2).isSession)
        let listed = try #require(await hub.run(.replies, from: 2).cannedReplies)
        #expect(listed.count == 200)
        #expect(listed.last == CannedReply(name: "reply 200", text: "new"))
    }
}

extension ServerFrame {
    fileprivate var isSession: Bool {
        if case .session = self { return true }
        return false
    }

    fileprivate var cannedReplies: [CannedReply]? {
        if case .replies(_, let replies) = self { return replies }
        return nil
    }
}
