import CareHubCore
import Foundation
import Testing

@Suite("front desk: presence and the queue")
struct FrontDeskTests {
    let org = OrgID("clinic")
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func session(_ token: String, _ user: String, _ presence: Presence = .available, name: String? = nil) -> Session {
        var session = Session(token: token, org: org, principal: .staff(user: user, role: .staff), createdAt: start, staffDisplayName: name)
        session.presence = presence
        return session
    }

    @Test func theMostPresentSessionWins() {
        #expect(Presence.combined([]) == .offline)
        #expect(Presence.combined([.away, .away]) == .away)
        #expect(Presence.combined([.away, .available]) == .available)
        let members = PresenceBoard.members(of: [session("a", "joy", .away, name: "Joy R"), session("b", "joy"), session("c", "kim", .away)], at: start)
        #expect(members["joy"] == PresenceBoard.Member(user: "joy", name: "Joy R", state: .available))
        #expect(members["kim"]?.state == .away)
    }

    @Test func onlyChangesAreAnnouncedAndALeaverGoesOfflineOnce() {
        let board = PresenceBoard()
        let joy = PresenceBoard.Member(user: "joy", name: "joy", state: .available)
        #expect(board.changes(in: org, current: ["joy": joy]) == [joy])
        #expect(board.changes(in: org, current: ["joy": joy]).isEmpty)
        #expect(board.changes(in: org, current: [:]) == [PresenceBoard.Member(user: "joy", name: "joy", state: .offline)])
        #expect(board.changes(in: org, current: [:]).isEmpty)
        #expect(board.changes(in: OrgID("other"), current: [:]).isEmpty)
    }

    @Test func theQueueIsOldestFirstAndTellsOnlyWhoMoved() {
        let queue = WaitingQueue()
        let (a, b, c) = (ConversationID("a"), ConversationID("b"), ConversationID("c"))
        queue.load(org, [(b, start.addingTimeInterval(10)), (a, start)])
        queue.enqueue(c, org: org, since: start.addingTimeInterval(20))
        #expect([a, b, c].map { queue.position(of: $0, org: org) } == [1, 2, 3])
        #expect(queue.changes(in: org).map(\.position) == [1, 2, 3])
        #expect(queue.changes(in: org).isEmpty)
        // The first is taken: it hears 0 once, the others move up.
        #expect(queue.remove(a, org: org))
        let moved = queue.changes(in: org)
        #expect(moved.contains { $0.room == a && $0.position == 0 })
        #expect(moved.contains { $0.room == b && $0.position == 1 } && moved.contains { $0.room == c && $0.position == 2 })
        #expect(queue.changes(in: org).isEmpty)
        #expect(!queue.remove(a, org: org))
        // Back in the queue, it queues behind everyone waiting now.
        queue.enqueue(a, org: org, since: start.addingTimeInterval(30))
        #expect(queue.position(of: a, org: org) == 3)
        // A later load does not undo what happened since the start.
        queue.load(org, [(a, start)])
        #expect(queue.position(of: a, org: org) == 3)
        #expect(queue.position(of: a, org: OrgID("other")) == 0)
    }
}
