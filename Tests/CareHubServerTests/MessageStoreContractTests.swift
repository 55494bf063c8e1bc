import CareHubCore
import CareHubCrypto
import CareHubStorage
import CareHubTesting
import Foundation
import Testing

/// The ``MessageStore`` contract, run against the SQLite store (a real file in a temporary
/// directory), the PostgreSQL store (a fresh database of a throwaway server) and the in-memory
/// double the stage tests use, so that the double cannot promise what the adapters do not do,
/// nor the other way round.
@Suite("message store contract")
struct MessageStoreContractTests {
    let org = OrgID("clinic")
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    /// Each store under test, fresh; with `auditRefuses`, its audit trail refuses every event.
    func subjects(auditRefuses: Bool = false) async throws -> [MessageStoreSubject] {
        try await MessageStoreSubject.all(auditRefuses: auditRefuses, at: at)
    }

    func message(_ room: ConversationID, _ seq: UInt64, _ body: MessageBody? = nil) -> StoredMessage {
        StoredMessage(conversation: room, seq: seq, sender: "visitor", at: at.addingTimeInterval(Double(seq)), body: body ?? .plain("m\(seq)"))
    }

    func event(_ room: ConversationID, _ detail: String) -> AuditEvent {
        AuditEvent(at: at, org: org, actor: "visitor", address: "local", action: "phi.delivered", target: room.rawValue, detail: detail)
    }

    @Test func aMessageIsStoredWithTheEventsGivenWithIt() async throws {
        for subject in try await subjects() {
            let room = try await subject.room(org)
            try await subject.messages.append(message(room, 1), recording: [event(room, "seq=1")])
            try await subject.messages.append(message(room, 2))
            try await subject.messages.append(message(room, 3), recording: [event(room, "seq=3 a"), event(room, "seq=3 b")])
            #expect(try await subject.messages.history(of: room, limit: 10) == [message(room, 1), message(room, 2), message(room, 3)], "\(subject.name)")
            #expect(try await subject.audited().map(\.detail) == ["seq=1", "seq=3 a", "seq=3 b"], "\(subject.name)")
        }
    }

    @Test func aMessageThatCannotBeStoredLeavesNoneOfItsEvents() async throws {
        for subject in try await subjects() {
            let room = try await subject.room(org)
            try await subject.messages.append(message(room, 1), recording: [event(room, "first")])
            // The same seq twice, and a body that has no stored form: refused, and so are their events.
            await #expect(throws: (any Error).self, "\(subject.name)") {
                try await subject.messages.append(self.message(room, 1, .plain("again")), recording: [self.event(room, "duplicate")])
            }
            await #expect(throws: (any Error).self, "\(subject.name)") {
                try await subject.messages.append(self.message(room, 2, .unreadable), recording: [self.event(room, "unreadable")])
            }
            #expect(try await subject.messages.history(of: room, limit: 10) == [message(room, 1)], "\(subject.name)")
            #expect(try await subject.audited().map(\.detail) == ["first"], "\(subject.name)")
        }
    }

    @Test func eventsTheAuditTrailRefusesKeepTheirMessageOut() async throws {
        for subject in try await subjects(auditRefuses: true) {
            let room = try await subject.room(org)
            try await subject.messages.append(message(room, 1))
            await #expect(throws: (any Error).self, "\(subject.name)") {
                try await subject.messages.append(self.message(room, 2), recording: [self.event(room, "seq=2")])
            }
            #expect(try await subject.messages.history(of: room, limit: 10) == [message(room, 1)], "\(subject.name)")
            #expect(try await subject.audited().isEmpty, "\(subject.name)")
        }
    }

    @Test func sequencesAreUniqueAndIncreasingPerConversationAndSurviveAPurge() async throws {
        for subject in try await subjects() {
            let room = try await subject.room(org)
            let other = try await subject.room(org)
            #expect(try await subject.messages.reserveSequence(in: room) == 1, "\(subject.name)")
            #expect(try await subject.messages.reserveSequence(in: room) == 2, "\(subject.name)")
            #expect(try await subject.messages.reserveSequence(in: other) == 1, "\(subject.name)")
            let store = subject.messages
            let reserved = try await withThrowingTaskGroup(of: UInt64.self) { group in
                for _ in 0..<40 { group.addTask { try await store.reserveSequence(in: room) } }
                return try await group.reduce(into: [UInt64]()) { $0.append($1) }
            }
            #expect(reserved.sorted() == Array(3...42), "\(subject.name)")
            try await subject.messages.append(message(room, 42))
            #expect(try await subject.messages.purge(room) == 1, "\(subject.name)")
            #expect(try await subject.messages.reserveSequence(in: room) == 43, "\(subject.name): numbering never starts over")
        }
    }

    @Test func historyIsTheLatestMessagesBySeqOldestFirstOfThatConversationOnly() async throws {
        for subject in try await subjects() {
            let room = try await subject.room(org)
            let other = try await subject.room(org)
            // Appends finish in another order than their seqs were reserved.
            for seq: UInt64 in [2, 1, 4, 3, 5] { try await subject.messages.append(message(room, seq)) }
            try await subject.messages.append(message(other, 1))
            #expect(try await subject.messages.history(of: room, limit: 3).map(\.seq) == [3, 4, 5], "\(subject.name)")
            #expect(try await subject.messages.history(of: room, limit: 50).map(\.seq) == [1, 2, 3, 4, 5], "\(subject.name)")
            #expect(try await subject.messages.history(of: room, limit: 0).isEmpty, "\(subject.name)")
            #expect(try await subject.messages.history(of: other, limit: 50) == [message(other, 1)], "\(subject.name)")
            #expect(try await subject.messages.history(of: ConversationID("c_unknown"), limit: 50).isEmpty, "\(subject.name)")
        }
    }

    @Test func messagesAfterASeqAreTheNextOnesBySeqOldestFirstOfThatConversationOnly() async throws {
        for subject in try await subjects() {
            let room = try await subject.room(org)
            let other = try await subject.room(org)
            // Appends finish in another order than their seqs were reserved.
            for seq: UInt64 in [3, 1, 5, 2, 4, 7] { try await subject.messages.append(message(room, seq)) }
            for seq: UInt64 in [1, 2, 6] { try await subject.messages.append(message(other, seq)) }
            let store = subject.messages
            #expect(try await store.messages(of: room, after: 0, limit: 50) == [1, 2, 3, 4, 5, 7].map { message(room, $0) }, "\(subject.name)")
            // `after` is exclusive, and a seq that has no message (6) is a place like any other.
            #expect(try await store.messages(of: room, after: 2, limit: 2).map(\.seq) == [3, 4], "\(subject.name)")
            #expect(try await store.messages(of: room, after: 5, limit: 50).map(\.seq) == [7], "\(subject.name)")
            #expect(try await store.messages(of: room, after: 6, limit: 50).map(\.seq) == [7], "\(subject.name)")
            #expect(try await store.messages(of: room, after: 7, limit: 50).isEmpty, "\(subject.name)")
            #expect(try await store.messages(of: room, after: .max, limit: 50).isEmpty, "\(subject.name)")
            #expect(try await store.messages(of: room, after: 0, limit: 0).isEmpty, "\(subject.name)")
            #expect(try await store.messages(of: other, after: 1, limit: 50) == [message(other, 2), message(other, 6)], "\(subject.name)")
            #expect(try await store.messages(of: ConversationID("c_unknown"), after: 0, limit: 50).isEmpty, "\(subject.name)")

            // Page by page from the last seq seen: every message once, in order.
            var pages: [[UInt64]] = []
            var after: UInt64 = 0
            repeat {
                let page = try await store.messages(of: room, after: after, limit: 2)
                pages.append(page.map(\.seq))
                after = page.last?.seq ?? after
            } while pages.last?.isEmpty == false && pages.count < 10
            #expect(pages == [[1, 2], [3, 4], [5, 7], []], "\(subject.name)")
        }
    }

    @Test func plainMessagesAreSealedInPlaceOnceAndPurgeCountsWhatItErases() async throws {
        for subject in try await subjects() {
            let room = try await subject.room(org)
            let other = try await subject.room(org)
            let box = SealedText(keyID: "k1", bytes: [1, 2, 3])
            for seq: UInt64 in [3, 1, 2] { try await subject.messages.append(message(room, seq)) }
            try await subject.messages.append(message(room, 4, .sealed(box)))
            try await subject.messages.append(message(other, 1))
            #expect(try await subject.messages.plainMessages(of: room, limit: 2).map(\.seq) == [1, 2], "\(subject.name)")
            #expect(try await subject.messages.plainMessages(of: room, limit: 10).map(\.body) == [.plain("m1"), .plain("m2"), .plain("m3")], "\(subject.name)")

            let sealed = SealedText(keyID: "k2", bytes: [9])
            // seq 4 is sealed already and seq 9 does not exist: left alone, not counted.
            #expect(try await subject.messages.seal([(1, sealed), (4, sealed), (9, sealed)], in: room) == 1, "\(subject.name)")
            #expect(try await subject.messages.seal([(1, box)], in: room) == 0, "\(subject.name): a sealed message is not sealed again")
            #expect(try await subject.messages.history(of: room, limit: 10).map(\.body) == [.sealed(sealed), .plain("m2"), .plain("m3"), .sealed(box)], "\(subject.name)")
            #expect(try await subject.messages.plainMessages(of: room, limit: 10).map(\.seq) == [2, 3], "\(subject.name)")
            #expect(try await subject.messages.plainMessages(of: other, limit: 10).map(\.seq) == [1], "\(subject.name)")

            #expect(try await subject.messages.purge(room) == 4, "\(subject.name)")
            #expect(try await subject.messages.purge(room) == 0, "\(subject.name)")
            #expect(try await subject.messages.history(of: room, limit: 10).isEmpty, "\(subject.name)")
            #expect(try await subject.messages.history(of: other, limit: 10).count == 1, "\(subject.name)")
        }
    }

    @Test func aMessageKeepsTheAttachmentItCarriesThroughHistoryAndSealing() async throws {
        for subject in try await subjects() {
            let room = try await subject.room(org)
            let file = AttachmentID.random()
            var carrying = message(room, 1, .plain(""))
            carrying.attachment = file
            try await subject.messages.append(carrying, recording: [event(room, "seq=1")])
            try await subject.messages.append(message(room, 2))
            #expect(try await subject.messages.history(of: room, limit: 10).map(\.attachment) == [file, nil], "\(subject.name)")
            #expect(try await subject.messages.plainMessages(of: room, limit: 10).map(\.attachment) == [file, nil], "\(subject.name)")
            #expect(try await subject.messages.seal([(1, SealedText(keyID: "k1", bytes: [1]))], in: room) == 1, "\(subject.name)")
            #expect(try await subject.messages.history(of: room, limit: 10).first?.attachment == file, "\(subject.name)")
        }
    }
}
