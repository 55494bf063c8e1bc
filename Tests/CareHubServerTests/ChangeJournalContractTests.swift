import CareHubCore
import CareHubPostgresStorage
import CareHubStorage
import CareHubTesting
import Foundation
import Synchronization
import Testing

/// The ``ChangeJournal`` contract, run against the SQLite journal, the PostgreSQL journal (a
/// database of its own) and the in-memory double.
@Suite("change journal contract")
struct ChangeJournalContractTests {
    let org = OrgID("clinic")
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func journals() async throws -> [(name: String, journal: any ChangeJournal, keep: Any)] {
        let fixture = try KeyFixture()
        let postgres = try await PostgresStoreFixture()
        return [
            ("sqlite", SQLiteChangeJournal(database: fixture.database), fixture),
            ("postgres", PostgresChangeJournal(database: postgres.database), postgres),
            ("memory", MemoryChangeJournal(), ()),
        ]
    }

    @Test func changesComeBackInOrderWithWhatTheySaid() async throws {
        for (name, journal, _) in try await journals() {
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
        for (name, journal, _) in try await journals() {
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

    @Test func aFollowerOnAnotherNodeReadsEveryChangeOfTwoRacingWritersWithoutGaps() async throws {
        // Three nodes on one database: two record changes as fast as they can, on two connections
        // each, and the third follows them as ChangeFollower does (from `newest`, then
        // `changes(after: cursor)`), without pausing. A change that committed after one with a
        // higher id would be passed over for good.
        let fixture = try await PostgresStoreFixture()
        let writers = [PostgresChangeJournal(database: fixture.database), PostgresChangeJournal(database: try await fixture.node())]
        let follower = PostgresChangeJournal(database: try await fixture.node(connections: 1))
        let cursor = try await follower.newest()
        let finished = Finished()
        let writing = Task {
            defer { finished.value.store(true, ordering: .sequentiallyConsistent) }
            return try await withThrowingTaskGroup(of: [Change].self) { group in
                for (index, writer) in writers.enumerated() {
                    for lane in 0..<2 {
                        group.addTask {
                            var made: [Change] = []
                            for count in 0..<100 {
                                let kind = Change.Kind.sessionsRevoked(user: "u\(index)-\(lane)-\(count)", reason: "disabled")
                                made.append(try await writer.record(Change(org: org, kind: kind, origin: "node-\(index)"), at: start))
                            }
                            return made
                        }
                    }
                }
                return try await group.reduce(into: [Change]()) { $0 += $1 }
            }
        }
        var followed: [Change] = []
        var after = cursor
        while true {
            // Once the writers are done, one more empty read means nothing is left.
            let done = finished.value.load(ordering: .sequentiallyConsistent)
            let batch = try await follower.changes(after: after, limit: 7)
            followed += batch
            after = batch.last?.id ?? after
            if done && batch.isEmpty { break }
        }
        let all = try await writing.value.sorted { $0.id < $1.id }
        #expect(all.count == 400)
        #expect(followed.count == all.count, "the follower missed \(all.count - followed.count) changes")
        #expect(followed == all, "the follower saw every change once, in id order")
        #expect(try await follower.newest() == all.last?.id)
    }
}

/// Set once the writers of a race have finished.
private final class Finished: Sendable {
    let value = Atomic(false)
}
