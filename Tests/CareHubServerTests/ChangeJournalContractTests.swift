import CareHubCore
import CareHubStorage
import CareHubTesting
import Foundation
import Testing

/// The ``ChangeJournal`` contract, run against the SQLite journal and the in-memory double.
@Suite("change journal contract")
struct ChangeJournalContractTests {
    let org = OrgID("clinic")
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func journals() throws -> [(name: String, journal: any ChangeJournal, keep: Any)] {
        let fixture = try KeyFixture()
        return [("sqlite", SQLiteChangeJournal(database: fixture.database), fixture), ("memory", MemoryChangeJournal(), ())]
    }

    @Test func changesComeBackInOrderWithWhatTheySaid() async throws {
        for (name, journal, _) in try journals() {
            #expect(try await journal.newest() == 0, "\(name)")
            let revoked = try await journal.record(
                Change(org: org, kind: .sessionsRevoked(user: "nurse.joy", reason: "disabled"), origin: "cli"), at: start)
            let assigned = try await journal.record(
                Change(org: org, kind: .assigned(room: ConversationID("c_1"), user: "dr.lee", previous: nil), origin: "node-a"),
                at: start.addingTimeInterval(1))
            let unassigned = try await journal.record(
                Change(org: OrgID("other"), kind: .assigned(room: ConversationID("c_2"), user: nil, previous: "dr.lee"), origin: "node-a"),
                at: start.addingTimeInterval(2))
            #expect(revoked.id > 0 && assigned.id > revoked.id && unassigned.id > assigned.id, "\(name)")
            #expect(try await journal.newest() == unassigned.id, "\(name)")
            #expect(try await journal.changes(after: 0, limit: 10) == [revoked, assigned, unassigned], "\(name)")
            #expect(try await journal.changes(after: revoked.id, limit: 1) == [assigned], "\(name)")
            #expect(try await journal.changes(after: unassigned.id, limit: 10).isEmpty, "\(name)")
        }
    }

    @Test func forgettingOldChangesNeverReusesAnID() async throws {
        for (name, journal, _) in try journals() {
            let first = try await journal.record(Change(org: org, kind: .sessionsRevoked(user: "a", reason: "disabled"), origin: "cli"), at: start)
            let second = try await journal.record(
                Change(org: org, kind: .sessionsRevoked(user: "b", reason: "2fa_reset"), origin: "cli"), at: start.addingTimeInterval(60))
            #expect(try await journal.forget(before: start.addingTimeInterval(30)) == 1, "\(name)")
            #expect(try await journal.changes(after: 0, limit: 10) == [second], "\(name)")
            #expect(try await journal.forget(before: start.addingTimeInterval(120)) == 1, "\(name)")
            // Emptied, the journal still knows where it was; a follower's cursor stays valid.
            #expect(try await journal.newest() == second.id, "\(name)")
            let third = try await journal.record(Change(org: org, kind: .sessionsRevoked(user: "c", reason: "role_changed"), origin: "cli"), at: start)
            #expect(third.id > second.id && second.id > first.id, "\(name)")
            #expect(try await journal.changes(after: second.id, limit: 10) == [third], "\(name)")
        }
    }
}
