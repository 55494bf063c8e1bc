import CareHubCore
import CareHubCrypto
import CareHubStorage
import CareHubTesting
import Foundation
import Testing

/// The hub's record of a file, not swift-testing's attachment.
typealias Attachment = CareHubCore.Attachment

/// The ``AttachmentStore`` contract, run against the SQLite store (a real file in a temporary
/// directory), the in-memory double the stage tests use, and the PostgreSQL store.
@Suite("attachment store contract")
struct AttachmentStoreContractTests {
    let org = OrgID("clinic")
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    /// Each store under test, fresh; with `auditRefuses`, its audit trail refuses every event.
    func subjects(auditRefuses: Bool = false) async throws -> [StoreSubject] {
        try StoreSubject.all(auditRefuses: auditRefuses, at: at) + [try await StoreSubject.postgres(auditRefuses: auditRefuses, at: at)]
    }

    func attachment(_ room: ConversationID, org: OrgID? = nil, name: MessageBody = .plain("scan.png"), after seconds: Double = 0) -> Attachment {
        Attachment(
            id: .random(), org: org ?? self.org, conversation: room, sender: "visitor", name: name, contentType: "application/octet-stream",
            at: at.addingTimeInterval(seconds))
    }

    func message(_ room: ConversationID, _ seq: UInt64, carrying id: AttachmentID?) -> StoredMessage {
        StoredMessage(conversation: room, seq: seq, sender: "visitor", at: at.addingTimeInterval(Double(seq)), body: .plain(""), attachment: id)
    }

    func event(_ room: ConversationID, _ detail: String) -> AuditEvent {
        AuditEvent(at: at, org: org, actor: "visitor", address: "local", action: "phi.delivered", target: room.rawValue, detail: detail)
    }

    /// Begins, stores `chunks` in order and finishes an attachment as message `seq`.
    @discardableResult
    func store(
        _ subject: StoreSubject, _ record: Attachment, chunks: [AttachmentChunk], size: Int, seq: UInt64, state: AttachmentState = .ready
    ) async throws -> Attachment {
        try await subject.attachments.begin(record)
        for (index, chunk) in chunks.enumerated() { try await subject.attachments.appendChunk(record.id, index: index, chunk) }
        try await subject.attachments.finish(
            record.id, state: state, size: size, contentType: "image/png", message: message(record.conversation, seq, carrying: record.id),
            recording: [])
        return record
    }

    @Test func aReceivingAttachmentIsListedButNoneOfItsChunksIsReadable() async throws {
        for subject in try await subjects() {
            let room = try await subject.room(org)
            let record = attachment(room)
            try await subject.attachments.begin(record)
            try await subject.attachments.appendChunk(record.id, index: 0, .plain([1, 2, 3]))
            let stored = try #require(try await subject.attachments.attachment(record.id), "\(subject.name)")
            #expect(stored.state == .receiving && stored.size == 0 && stored.seq == nil, "\(subject.name)")
            #expect(stored.name == .plain("scan.png") && stored.sender == "visitor" && stored.at == at, "\(subject.name)")
            #expect(try await subject.attachments.chunk(record.id, index: 0) == nil, "\(subject.name): receiving, so unreadable")
            #expect(try await subject.attachments.attachments(of: room).map(\.id) == [record.id], "\(subject.name)")
            // A receiving attachment cannot be made readable by a state change, only by finishing.
            await #expect(throws: (any Error).self, "\(subject.name)") { try await subject.attachments.setState(record.id, .ready) }
            #expect(try await subject.attachments.chunk(record.id, index: 0) == nil, "\(subject.name)")
        }
    }

    @Test func chunksAreTakenInOrderOnlyAndReadBackByIndexOnceFinished() async throws {
        for subject in try await subjects() {
            let room = try await subject.room(org)
            let record = attachment(room)
            let sealed = SealedText(keyID: "k1", bytes: [9, 9])
            try await subject.attachments.begin(record)
            await #expect(throws: (any Error).self, "\(subject.name): chunk 1 before chunk 0") {
                try await subject.attachments.appendChunk(record.id, index: 1, .plain([1]))
            }
            try await subject.attachments.appendChunk(record.id, index: 0, .plain(Array(repeating: 7, count: Attachment.chunkSize)))
            await #expect(throws: (any Error).self, "\(subject.name): chunk 0 twice") {
                try await subject.attachments.appendChunk(record.id, index: 0, .plain([1]))
            }
            try await subject.attachments.appendChunk(record.id, index: 1, .sealed(sealed))
            await #expect(throws: (any Error).self, "\(subject.name): a chunk of an attachment never begun") {
                try await subject.attachments.appendChunk(.random(), index: 0, .plain([1]))
            }
            try await subject.attachments.finish(
                record.id, state: .ready, size: Attachment.chunkSize + 2, contentType: "image/png", message: message(room, 1, carrying: record.id),
                recording: [])
            #expect(try await subject.attachments.chunk(record.id, index: 0) == .plain(Array(repeating: 7, count: Attachment.chunkSize)), "\(subject.name)")
            #expect(try await subject.attachments.chunk(record.id, index: 1) == .sealed(sealed), "\(subject.name)")
            #expect(try await subject.attachments.chunk(record.id, index: 2) == nil, "\(subject.name)")
            await #expect(throws: (any Error).self, "\(subject.name): no chunk after the finish") {
                try await subject.attachments.appendChunk(record.id, index: 2, .plain([1]))
            }
        }
    }

    @Test func anEmptyFileIsOneEmptyChunk() async throws {
        for subject in try await subjects() {
            let room = try await subject.room(org)
            let record = try await store(subject, attachment(room), chunks: [.plain([])], size: 0, seq: 1)
            #expect(try await subject.attachments.chunk(record.id, index: 0) == .plain([]), "\(subject.name)")
            #expect(try await subject.attachments.attachment(record.id)?.size == 0, "\(subject.name)")
        }
    }

    @Test func finishingStoresTheMessageAndItsEventsWithTheAttachmentInOneCommit() async throws {
        for subject in try await subjects() {
            let room = try await subject.room(org)
            let record = attachment(room, name: .sealed(SealedText(keyID: "k1", bytes: [4, 5])))
            try await subject.attachments.begin(record)
            try await subject.attachments.appendChunk(record.id, index: 0, .plain([1, 2, 3]))
            try await subject.attachments.finish(
                record.id, state: .held, size: 3, contentType: "image/png", message: message(room, 1, carrying: record.id),
                recording: [event(room, "seq=1 attachment")])
            let stored = try #require(try await subject.attachments.attachment(record.id), "\(subject.name)")
            #expect(stored.state == .held && stored.size == 3 && stored.contentType == "image/png" && stored.seq == 1, "\(subject.name)")
            #expect(stored.name == .sealed(SealedText(keyID: "k1", bytes: [4, 5])), "\(subject.name)")
            #expect(try await subject.messages.history(of: room, limit: 10) == [message(room, 1, carrying: record.id)], "\(subject.name)")
            #expect(try await subject.audited().map(\.detail) == ["seq=1 attachment"], "\(subject.name)")
            #expect(try await subject.attachments.chunk(record.id, index: 0) == .plain([1, 2, 3]), "\(subject.name): held is stored, for the rescan")
            try await subject.attachments.setState(record.id, .ready)
            #expect(try await subject.attachments.attachment(record.id)?.state == .ready, "\(subject.name)")
        }
    }

    @Test func aFinishThatFailsLeavesNeitherTheMessageNorItsEventsAndTheAttachmentReceiving() async throws {
        for auditRefuses in [false, true] {
            for subject in try await subjects(auditRefuses: auditRefuses) {
                let room = try await subject.room(org)
                let record = attachment(room)
                try await subject.attachments.begin(record)
                try await subject.attachments.appendChunk(record.id, index: 0, .plain([1, 2, 3]))
                let events = [event(room, "seq=1 attachment")]
                if auditRefuses {
                    // The trail refuses the delivery record.
                    await #expect(throws: (any Error).self, "\(subject.name)") {
                        try await subject.attachments.finish(
                            record.id, state: .ready, size: 3, contentType: "image/png", message: self.message(room, 1, carrying: record.id),
                            recording: events)
                    }
                } else {
                    // The message's seq is taken already; a size the chunks do not add up to;
                    // a message that carries another attachment.
                    try await subject.messages.append(message(room, 1, carrying: nil))
                    for (seq, size, carried) in [(UInt64(1), 3, record.id), (2, Attachment.chunkSize + 1, record.id), (2, 3, AttachmentID.random())] {
                        await #expect(throws: (any Error).self, "\(subject.name)") {
                            try await subject.attachments.finish(
                                record.id, state: .ready, size: size, contentType: "image/png", message: self.message(room, seq, carrying: carried),
                                recording: events)
                        }
                    }
                }
                #expect(try await subject.attachments.attachment(record.id)?.state == .receiving, "\(subject.name)")
                #expect(try await subject.attachments.chunk(record.id, index: 0) == nil, "\(subject.name)")
                #expect(try await subject.messages.history(of: room, limit: 10).allSatisfy { $0.attachment == nil }, "\(subject.name)")
                #expect(try await subject.audited().isEmpty, "\(subject.name)")
                // It can still be finished properly, once.
                if !auditRefuses {
                    try await subject.attachments.finish(
                        record.id, state: .ready, size: 3, contentType: "image/png", message: message(room, 2, carrying: record.id), recording: events)
                    #expect(try await subject.messages.history(of: room, limit: 10).map(\.attachment) == [nil, record.id], "\(subject.name)")
                    #expect(try await subject.audited().map(\.detail) == ["seq=1 attachment"], "\(subject.name)")
                    await #expect(throws: (any Error).self, "\(subject.name): finished twice") {
                        try await subject.attachments.finish(
                            record.id, state: .ready, size: 3, contentType: "image/png", message: self.message(room, 3, carrying: record.id),
                            recording: [])
                    }
                }
            }
        }
    }

    @Test func discardAndPurgeEraseTheRecordsAndChunksOfTheirAttachmentsOnly() async throws {
        for subject in try await subjects() {
            let room = try await subject.room(org)
            let other = try await subject.room(org)
            let first = try await store(subject, attachment(room), chunks: [.plain([1])], size: 1, seq: 1)
            let second = try await store(subject, attachment(room, after: 1), chunks: [.plain([2])], size: 1, seq: 2, state: .held)
            let receiving = attachment(room, after: 2)
            try await subject.attachments.begin(receiving)
            let kept = try await store(subject, attachment(other), chunks: [.plain([3])], size: 1, seq: 1)

            try await subject.attachments.discard(second.id)
            #expect(try await subject.attachments.attachment(second.id) == nil, "\(subject.name)")
            #expect(try await subject.attachments.chunk(second.id, index: 0) == nil, "\(subject.name)")
            #expect(try await subject.attachments.attachments(of: room).map(\.id) == [first.id, receiving.id], "\(subject.name)")

            #expect(try await subject.attachments.purge(room) == 2, "\(subject.name)")
            #expect(try await subject.attachments.purge(room) == 0, "\(subject.name)")
            #expect(try await subject.attachments.attachments(of: room).isEmpty, "\(subject.name)")
            #expect(try await subject.attachments.attachment(first.id) == nil, "\(subject.name)")
            #expect(try await subject.attachments.chunk(first.id, index: 0) == nil, "\(subject.name)")
            #expect(try await subject.attachments.attachment(receiving.id) == nil, "\(subject.name)")
            #expect(try await subject.attachments.chunk(kept.id, index: 0) == .plain([3]), "\(subject.name)")
            #expect(try await subject.attachments.attachments(of: other).map(\.id) == [kept.id], "\(subject.name)")
        }
    }

    @Test func heldIsPerOrganisationAndAbandonedIsReceivingBeforeTheDateOldestFirst() async throws {
        for subject in try await subjects() {
            let room = try await subject.room(org)
            let elsewhere = OrgID("elsewhere")
            let foreign = try await subject.room(elsewhere)
            let later = try await store(subject, attachment(room, after: 20), chunks: [.plain([1])], size: 1, seq: 1, state: .held)
            let earlier = try await store(subject, attachment(room, after: 10), chunks: [.plain([1])], size: 1, seq: 2, state: .held)
            _ = try await store(subject, attachment(room, after: 5), chunks: [.plain([1])], size: 1, seq: 3, state: .ready)
            let theirs = try await store(subject, attachment(foreign, org: elsewhere), chunks: [.plain([1])], size: 1, seq: 1, state: .held)
            #expect(try await subject.attachments.held(org: org, limit: 10).map(\.id) == [earlier.id, later.id], "\(subject.name)")
            #expect(try await subject.attachments.held(org: org, limit: 1).map(\.id) == [earlier.id], "\(subject.name)")
            #expect(try await subject.attachments.held(org: elsewhere, limit: 10).map(\.id) == [theirs.id], "\(subject.name)")
            try await subject.attachments.setState(earlier.id, .ready)
            #expect(try await subject.attachments.held(org: org, limit: 10).map(\.id) == [later.id], "\(subject.name)")

            let old = attachment(room, after: 30)
            let older = attachment(foreign, org: elsewhere, after: 25)
            let fresh = attachment(room, after: 60)
            for record in [old, older, fresh] { try await subject.attachments.begin(record) }
            let cutoff = at.addingTimeInterval(40)
            #expect(try await subject.attachments.abandoned(before: cutoff, limit: 10) == [older.id, old.id], "\(subject.name): every organisation's")
            #expect(try await subject.attachments.abandoned(before: cutoff, limit: 1) == [older.id], "\(subject.name)")
            try await subject.attachments.discard(older.id)
            #expect(try await subject.attachments.abandoned(before: cutoff, limit: 10) == [old.id], "\(subject.name)")
        }
    }

    @Test func plainFilesAreListedAndSealedInPlaceLeavingNoPlainCopyInTheFiles() async throws {
        for subject in try await subjects() {
            let room = try await subject.room(org)
            let canary = Array("CANARY-PLAIN-CHUNK".utf8)
            // A whole first chunk, so that its bytes sit in overflow pages, and a short last one.
            let first = (0..<Attachment.chunkSize).map { canary[$0 % canary.count] }
            let plain = try await store(
                subject, attachment(room, name: .plain("CANARY-PLAIN-NAME.png")), chunks: [.plain(first), .plain([9])],
                size: Attachment.chunkSize + 1, seq: 1)
            let box = SealedText(keyID: "k1", bytes: [1, 2, 3])
            let sealed = try await store(subject, attachment(room, name: .sealed(box), after: 1), chunks: [.sealed(box)], size: 3, seq: 2)
            let receiving = attachment(room, name: .plain("x.png"), after: 2)
            try await subject.attachments.begin(receiving)
            let name = Array("CANARY-PLAIN-NAME".utf8)
            // The database files (main, WAL, shared memory) that hold `bytes`; none for the double.
            func holding(_ bytes: [UInt8]) throws -> [String] {
                guard let fixture = subject.keep as? KeyFixture else { return [] }
                let files = try FileManager.default.contentsOfDirectory(atPath: fixture.path).filter { $0.hasPrefix("carehub.sqlite") }
                return try files.filter { try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture.path + "/" + $0))).firstRange(of: bytes) != nil }
            }
            if subject.keep is KeyFixture {
                #expect(try !holding(canary).isEmpty && !holding(name).isEmpty, "\(subject.name): stored plain to begin with")
            }
            #expect(try await subject.attachments.plainAttachments(of: room).map(\.id) == [plain.id], "\(subject.name)")
            #expect(!(try await subject.attachments.plainAttachments(of: room).map(\.id).contains(sealed.id)), "\(subject.name)")

            // Chunk 1 first: a file half sealed is still listed.
            try await subject.attachments.sealChunks(plain.id, [(1, SealedText(keyID: "k1", bytes: [7]))])
            #expect(try await subject.attachments.plainAttachments(of: room).map(\.id) == [plain.id], "\(subject.name)")
            try await subject.attachments.sealChunks(plain.id, [(0, box), (1, SealedText(keyID: "k2", bytes: [8]))])
            #expect(try await subject.attachments.chunk(plain.id, index: 1) == .sealed(SealedText(keyID: "k1", bytes: [7])), "\(subject.name): sealed is kept")
            #expect(try await subject.attachments.plainAttachments(of: room).map(\.id) == [plain.id], "\(subject.name): the name is still plain")
            #expect(try holding(canary).isEmpty, "\(subject.name): sealing the chunks leaves no plain copy of them, before the name is sealed")
            try await subject.attachments.sealName(plain.id, box)
            try await subject.attachments.sealName(plain.id, SealedText(keyID: "k2", bytes: [4]))
            #expect(try await subject.attachments.plainAttachments(of: room).isEmpty, "\(subject.name)")
            #expect(try await subject.attachments.attachment(plain.id)?.name == .sealed(box), "\(subject.name)")
            #expect(try await subject.attachments.chunk(plain.id, index: 0) == .sealed(box), "\(subject.name)")
            await #expect(throws: (any Error).self, "\(subject.name): a file being received is not sealed in place") {
                try await subject.attachments.sealName(receiving.id, box)
            }
            #expect(try holding(canary).isEmpty, "\(subject.name): no file holds the plain chunk")
            #expect(try holding(name).isEmpty, "\(subject.name): no file holds the plain name")
        }
    }

    @Test func anAttachmentIsNotFinishedIntoAnotherConversation() async throws {
        for subject in try await subjects() {
            let room = try await subject.room(org)
            let other = try await subject.room(org)
            let record = attachment(room)
            try await subject.attachments.begin(record)
            try await subject.attachments.appendChunk(record.id, index: 0, .plain([1]))
            await #expect(throws: (any Error).self, "\(subject.name)") {
                try await subject.attachments.finish(
                    record.id, state: .ready, size: 1, contentType: "image/png", message: self.message(other, 1, carrying: record.id), recording: [])
            }
            #expect(try await subject.messages.history(of: other, limit: 10).isEmpty, "\(subject.name)")
            #expect(try await subject.attachments.attachments(of: other).isEmpty, "\(subject.name)")
            #expect(try await subject.attachments.attachment(record.id)?.state == .receiving, "\(subject.name)")
        }
    }
}
