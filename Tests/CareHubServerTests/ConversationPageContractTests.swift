import CareHubCore
import CareHubServer
import CareHubStorage
import CareHubTesting
import Foundation
import Testing

/// The API listing's part of the ``ConversationStore`` contract (``ConversationStore/page(org:filter:limit:)``),
/// run against the SQLite store, the hub's cache in front of it, the PostgreSQL store and the
/// in-memory double the stage tests use.
@Suite("conversation listing: conversation store contract")
struct ConversationPageContractTests {
    let org = OrgID("clinic")
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    func stores() async throws -> [(name: String, store: any ConversationStore, keep: Any)] { try await conversationStoresUnderTest() }

    /// Conversations of `org` started at these offsets from ``at`` (ties and fractions included).
    func make(_ store: any ConversationStore, _ offsets: [Double], org: OrgID? = nil) async throws -> [Conversation] {
        var made: [Conversation] = []
        for offset in offsets {
            made.append(try await store.create(org: org ?? self.org, tokenDigest: Array(UUID().uuidString.utf8), at: at.addingTimeInterval(offset)))
        }
        return made
    }

    /// Newest first by start, then by id, as the contract says.
    func newestFirst(_ conversations: [Conversation]) -> [ConversationID] {
        conversations.sorted {
            $0.startedAt != $1.startedAt ? $0.startedAt > $1.startedAt : $0.id.rawValue > $1.id.rawValue
        }.map(\.id)
    }

    /// Every page of `filter` at `limit` a row, each started from the cursor a client would send
    /// back (the last row's, through its text).
    func walk(_ store: any ConversationStore, _ filter: ConversationFilter, limit: Int, org: OrgID? = nil) async throws -> [[ConversationID]] {
        var pages: [[ConversationID]] = []
        var filter = filter
        repeat {
            let page = try await store.page(org: org ?? self.org, filter: filter, limit: limit)
            pages.append(page.map(\.id))
            filter.before = page.last.flatMap { ConversationCursor(text: ConversationCursor(startedAt: $0.startedAt, id: $0.id).text) }
        } while pages.last?.isEmpty == false && pages.count < 20
        return pages
    }

    @Test func aPageIsNewestFirstByStartThenIdAndStopsAtItsLimit() async throws {
        for (name, store, _) in try await stores() {
            let made = try await make(store, [0, 5, 2.5, 5, 9.75, 2.5, 5])
            let all = try await store.page(org: org, filter: ConversationFilter(), limit: 50)
            #expect(all.map(\.id) == newestFirst(made), "\(name)")
            #expect(try await store.page(org: org, filter: ConversationFilter(), limit: 3).map(\.id) == Array(newestFirst(made).prefix(3)), "\(name)")
            #expect(try await store.page(org: org, filter: ConversationFilter(), limit: 0).isEmpty, "\(name)")
            #expect(all.map(\.startedAt) == all.map(\.startedAt).sorted(by: >), "\(name)")
        }
    }

    @Test func theCursorContinuesExactlyWhereThePageEndedThroughTiesAndFractions() async throws {
        for (name, store, _) in try await stores() {
            // Three-way and two-way ties on the start time, fractional starts, a tie across a page boundary at every limit.
            let made = try await make(store, [0, 0.1, 0.1, 0.1, 1.000_001, 1.000_001, 2.333_333_333, 7, 7, 7.5])
            let expected = newestFirst(made)
            for limit in 1...4 {
                let pages = try await walk(store, ConversationFilter(), limit: limit)
                #expect(pages.dropLast().allSatisfy { !$0.isEmpty && $0.count <= limit }, "\(name) limit=\(limit)")
                #expect(pages.last == [], "\(name) limit=\(limit): the walk ends on an empty page")
                #expect(pages.flatMap { $0 } == expected, "\(name) limit=\(limit): no repeats, no gaps")
            }
            // A cursor at a tied row lets through its tie-mates with a smaller id only.
            let tied = made.filter { $0.startedAt == at.addingTimeInterval(0.1) }.sorted { $0.id.rawValue > $1.id.rawValue }
            let after = ConversationFilter(before: ConversationCursor(startedAt: tied[0].startedAt, id: tied[0].id))
            let rest = try await store.page(org: org, filter: after, limit: 50).map(\.id)
            #expect(rest == Array(expected.drop { $0 != tied[0].id }.dropFirst()), "\(name)")
        }
    }

    @Test func endedAndAssignedFiltersLetThroughOnlyTheirConversationsOnEveryPage() async throws {
        for (name, store, _) in try await stores() {
            let made = try await make(store, [0, 1, 1, 2, 3, 3, 4, 5])
            for index in [1, 2, 5] { try await store.markEnded(made[index].id, at: at.addingTimeInterval(10)) }
            for index in [0, 2, 3, 5] { try await store.assign(made[index].id, to: "joy") }
            try await store.assign(made[4].id, to: "kim")
            let ended = [1, 2, 5].map { made[$0] }
            let open = [0, 3, 4, 6, 7].map { made[$0] }
            let joys = [0, 2, 3, 5].map { made[$0] }

            #expect(try await walk(store, ConversationFilter(ended: true), limit: 2).flatMap { $0 } == newestFirst(ended), "\(name)")
            #expect(try await walk(store, ConversationFilter(ended: false), limit: 2).flatMap { $0 } == newestFirst(open), "\(name)")
            #expect(try await walk(store, ConversationFilter(assignedTo: "joy"), limit: 1).flatMap { $0 } == newestFirst(joys), "\(name)")
            #expect(try await walk(store, ConversationFilter(ended: true, assignedTo: "joy"), limit: 1).flatMap { $0 }
                == newestFirst([made[2], made[5]]), "\(name)")
            #expect(try await walk(store, ConversationFilter(ended: false, assignedTo: "kim"), limit: 5).flatMap { $0 } == [made[4].id], "\(name)")
            #expect(try await store.page(org: org, filter: ConversationFilter(assignedTo: "nobody"), limit: 50).isEmpty, "\(name)")
            // The rows carry their state as stored.
            let page = try await store.page(org: org, filter: ConversationFilter(ended: true), limit: 50)
            #expect(page.allSatisfy { $0.hasEnded && $0.endedAt == at.addingTimeInterval(10) }, "\(name)")
        }
    }

    @Test func aPageHoldsOnlyItsOwnOrganisationsConversationsWhateverTheCursor() async throws {
        for (name, store, _) in try await stores() {
            let other = OrgID("elsewhere")
            let ours = try await make(store, [0, 2, 4])
            let theirs = try await make(store, [1, 3, 5], org: other)
            for conversation in theirs { try await store.assign(conversation.id, to: "joy") }
            #expect(try await walk(store, ConversationFilter(), limit: 2).flatMap { $0 } == newestFirst(ours), "\(name)")
            #expect(try await walk(store, ConversationFilter(), limit: 2, org: other).flatMap { $0 } == newestFirst(theirs), "\(name)")
            #expect(try await store.page(org: org, filter: ConversationFilter(assignedTo: "joy"), limit: 50).isEmpty, "\(name)")
            // A cursor made from another organisation's row only says where to start.
            let foreign = ConversationFilter(before: ConversationCursor(startedAt: theirs[2].startedAt, id: theirs[2].id))
            #expect(try await store.page(org: org, filter: foreign, limit: 50).map(\.id) == newestFirst(ours), "\(name)")
            #expect(try await store.page(org: OrgID("nobody"), filter: ConversationFilter(), limit: 50).isEmpty, "\(name)")
        }
    }
}
