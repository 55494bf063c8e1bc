import CareHubCore
@testable import CareHubServer
import CareHubStorage
import CareHubTransport
import Foundation
import Testing

/// Changes another process recorded in the journal (`carehub user …`, `carehub conversations
/// assign`) are applied by a running hub in its next round, and its own are not applied twice.
@Suite("hub: changes made by other processes", .serialized)
struct ChangeFollowerTests {
    static let assignedConfig = HubHarness.config.replacingOccurrences(
        of: "name = Test Clinic\n", with: "name = Test Clinic\nstaff_access = assigned\n")

    /// The journal as another process on the same database writes it.
    func otherProcess(_ harness: HubHarness) -> SQLiteChangeJournal { SQLiteChangeJournal(database: harness.hub.database) }

    @Test func anAccountDisabledElsewhereLosesItsSessionsInTheNextRound() async throws {
        let harness = try HubHarness()
        try await harness.addUser("joy")
        try await harness.addUser("sam")
        harness.open(1)
        harness.open(2)
        _ = try await harness.login(1, "joy")
        _ = try await harness.login(2, "sam")
        try await harness.hub.follower.begin()
        try await otherProcess(harness).record(
            Change(org: OrgID("clinic"), kind: .sessionsRevoked(user: "joy", reason: "disabled"), origin: "cli"), at: Date())
        await harness.hub.follower.round(at: Date())
        let expired = try await harness.next(1, ["session_expired"])
        #expect(expired["reason"] as? String == "revoked")
        #expect(harness.hub.environment.sessions.sessions(of: OrgID("clinic")).map(\.principal.displayName) == ["sam"])
        let revoked = try harness.hub.audit.entries(org: OrgID("clinic"), action: "session.revoked").map(\.event)
        #expect(revoked.map(\.target) == ["joy"] && revoked.first?.detail == "reason=disabled")
        await harness.stop()
    }

    @Test func aChangeThisHubMadeIsNotAppliedAgain() async throws {
        let harness = try HubHarness()
        try await harness.addUser("joy")
        harness.open(1)
        _ = try await harness.login(1, "joy")
        try await harness.hub.follower.begin()
        try await otherProcess(harness).record(
            Change(org: OrgID("clinic"), kind: .sessionsRevoked(user: "joy", reason: "disabled"), origin: harness.hub.environment.origin),
            at: Date())
        await harness.hub.follower.round(at: Date())
        #expect(harness.hub.environment.sessions.sessions(of: OrgID("clinic")).count == 1)
        await harness.stop()
    }

    @Test func anAssignmentMadeElsewhereTakesTheRoomFromItsReaderAndTellsTheAssignee() async throws {
        let harness = try HubHarness(config: Self.assignedConfig)
        try await harness.addUser("joy")
        try await harness.addUser("sam")
        try await harness.addUser("boss", role: .admin)
        harness.open(1)
        harness.open(2)
        harness.open(3)
        harness.open(4)
        let welcome = try await harness.request(1, ["type": "hello", "org": "clinic", "id": "h"], ["welcome"])
        let room = try #require(welcome["conversation"] as? String)
        _ = try await harness.login(2, "joy")
        _ = try await harness.login(3, "sam")
        _ = try await harness.login(4, "boss")
        _ = try await harness.request(4, ["type": "assign", "room": room, "user": "joy", "id": "a"], ["assigned"])
        _ = try await harness.request(2, ["type": "subscribe", "room": room, "id": "s"], ["subscribed"])
        try await harness.hub.follower.begin()

        // What `carehub conversations assign` does in its own process.
        let database = harness.hub.database
        let assignments = Assignments(
            conversations: SQLiteConversationStore(database: database), users: SQLiteUserDirectory(database: database),
            audit: harness.hub.audit, journal: otherProcess(harness), origin: "cli")
        _ = try await assignments.assign(ConversationID(room), in: OrgID("clinic"), to: "sam", by: "cli:root", address: "local", at: Date())
        await harness.hub.follower.round(at: Date())

        let dropped = try await harness.next(2, ["unsubscribed"])
        #expect(dropped["room"] as? String == room && dropped["reason"] as? String == "access_changed")
        let told = try await harness.next(3, ["assigned"])
        #expect(told["room"] as? String == room && told["user"] as? String == "sam")
        // Joy is no longer a member: the visitor's next message is not even considered for her.
        _ = try await harness.request(1, ["type": "send", "room": room, "text": "hello", "id": "m"], ["ack"])
        _ = try await harness.request(2, ["type": "rooms", "id": "r"], ["rooms"])
        let types = harness.out.frames(to: ConnectionHandle(rawValue: 2)).compactMap { $0["type"] as? String }
        #expect(!types.contains("message"), "\(types)")
        await harness.stop()
    }

    @Test func theCommandLineAndTheAdminAPIAuditAnAccountChangeAlike() async throws {
        let harness = try HubHarness()
        try await harness.addUser("joy")
        try await harness.addUser("boss", role: .admin)
        harness.open(1)
        _ = try await harness.login(1, "boss")
        _ = try await harness.request(1, ["type": "admin", "op": "users.set_role", "user": "joy", "role": "admin", "id": "r"], ["admin"])
        let accounts = StaffAccounts(
            database: harness.hub.database, audit: harness.hub.audit, credentials: harness.hub.scrypt, journal: otherProcess(harness),
            origin: "cli")
        try await accounts.setRole(org: OrgID("clinic"), name: "joy", role: .staff, by: StaffAccounts.Author(actor: "cli:root", address: "local", account: nil))
        let changes = try harness.hub.audit.entries(org: OrgID("clinic"), action: "user.role_changed").map(\.event)
        #expect(Set(changes.map(\.detail)) == ["old=staff new=admin", "old=admin new=staff"])
        #expect(Set(changes.map(\.actor)) == ["boss", "cli:root"])
        // Both revoke through the journal; the hub skips its own entry.
        let journaled = try await otherProcess(harness).changes(after: 0, limit: 10)
        #expect(journaled.map(\.kind) == Array(repeating: .sessionsRevoked(user: "joy", reason: "role_changed"), count: 2))
        #expect(journaled.map(\.origin) == [harness.hub.environment.origin, "cli"])
        await harness.stop()
    }
}
