import CareHubCore
@testable import CareHubServer
import Foundation
import Testing

@Suite("connection lifecycle")
struct ConnectionLifecycleTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func staffSession(idle: Duration? = nil) -> Session {
        var session = Session(token: "t", org: OrgID("clinic"), principal: .staff(user: "joy", role: .staff), createdAt: start)
        if let idle { session.idlePolicy = IdlePolicy(idleTimeout: idle, lifetime: .seconds(12 * 3600)) }
        return session
    }

    @Test func aConnectionOverTheAddressLimitIsRefusedAndNothingElseHappensToIt() {
        var lifecycle = ConnectionLifecycle()
        #expect(lifecycle.opened(registered: false, limit: 20, draining: false) == [
            .refuse(PipelineError(.rateLimited, "too many connections from this address (at most 20)"))])
        #expect(lifecycle.state == .refused)
        #expect(lifecycle.closed(session: staffSession(), peer: "10.0.0.9", at: start).isEmpty)
    }

    @Test func aConnectionOpenedWhileDrainingTakesNoFrames() {
        var lifecycle = ConnectionLifecycle()
        #expect(lifecycle.opened(registered: true, limit: 20, draining: true) == [.closeInbox])
        var open = ConnectionLifecycle()
        #expect(open.opened(registered: true, limit: 20, draining: false).isEmpty && open.state == .open)
    }

    @Test func aStaffSessionEndedByItsClosedSocketIsRecordedOnceAndAnnounced() {
        var lifecycle = ConnectionLifecycle()
        _ = lifecycle.opened(registered: true, limit: 20, draining: false)
        let actions = lifecycle.closed(session: staffSession(idle: .seconds(600)), peer: "10.0.0.9", at: start.addingTimeInterval(60))
        #expect(actions == [
            .record(AuditEvent(
                at: start.addingTimeInterval(60), org: OrgID("clinic"), actor: "joy", address: "10.0.0.9", action: "session.ended",
                detail: "reason=disconnect")),
            .announcePresence(OrgID("clinic")),
        ])
        #expect(lifecycle.state == .ended)
        #expect(lifecycle.closed(session: staffSession(), peer: "10.0.0.9", at: start).isEmpty)
    }

    @Test func aConsoleThatPassedItsIdleTimeBeforeClosingEndsAsExpired() {
        var lifecycle = ConnectionLifecycle()
        _ = lifecycle.opened(registered: true, limit: 20, draining: false)
        let actions = lifecycle.closed(session: staffSession(idle: .seconds(600)), peer: "10.0.0.9", at: start.addingTimeInterval(601))
        #expect(actions.first == .record(AuditEvent(
            at: start.addingTimeInterval(601), org: OrgID("clinic"), actor: "joy", address: "10.0.0.9", action: "session.expired",
            detail: "reason=idle")))
    }

    @Test func aVisitorOrAnUnboundConnectionEndsWithNothingToRecord() {
        var visitor = ConnectionLifecycle()
        _ = visitor.opened(registered: true, limit: 20, draining: false)
        let session = Session(token: "v", org: OrgID("clinic"), principal: .visitor(ConversationID("c_1")), createdAt: start)
        #expect(visitor.closed(session: session, peer: "10.0.0.9", at: start).isEmpty)
        var unbound = ConnectionLifecycle()
        _ = unbound.opened(registered: true, limit: 20, draining: false)
        #expect(unbound.closed(session: nil, peer: "10.0.0.9", at: start).isEmpty)
    }
}
