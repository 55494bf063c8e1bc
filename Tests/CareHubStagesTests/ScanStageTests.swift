import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Synchronization
import Testing

/// The scan stage: every file passes the scanner before the store makes it readable; infected
/// files are refused and audited by signature; a scanner that is down rejects or holds.
@Suite("scan stage")
struct ScanStageTests {
    static func config(onError: String, hipaa: Bool = true) -> String {
        """
        [org clinic]
        name = Riverside Clinic
        hipaa = \(hipaa ? "on" : "off")
        attachments max_size=1MB
        stage auth visitors=on
        stage idle timeout=10m lifetime=1h
        stage scan engine=clamd socket=/run/clamav/clamd.ctl on_error=\(onError)
        stage encrypt
        stage store history=50
        stage fanout notify=count via=pager
        integration pager type=webhook url=https://pager.example.org/hook baa=yes
        """
    }

    /// A PNG's signature, then `body`.
    static func png(_ body: [UInt8]) -> [UInt8] { [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + body }

    /// Uploads `bytes` as the visitor of `room` (its reconnect token), in pieces of `piece` bytes.
    func attach(_ hub: StageHarness, _ bytes: [UInt8], room: ConversationID, token: String, piece: Int = 7, name: String = "rash-photo.png")
        async throws -> Outcome {
        try await attach(hub, AttachmentBytes.bytes(bytes, piece: piece), size: bytes.count, room: room, token: token, name: name)
    }

    func attach(_ hub: StageHarness, _ bytes: AttachmentBytes, size: Int, room: ConversationID, token: String, name: String = "rash-photo.png")
        async throws -> Outcome {
        var request = hub.world.request(.attach(room: room, upload: AttachmentUpload(name: name, declaredSize: size, bytes: bytes)), connection: ConnectionID(99))
        request.credential = token
        return try await hub.pipeline.run(request)
    }

    func download(_ hub: StageHarness, _ id: AttachmentID, token: String) async throws -> [UInt8] {
        var request = hub.world.request(.download(id), connection: ConnectionID(98))
        request.credential = token
        let download = try #require(try await hub.pipeline.run(request).download)
        var bytes: [UInt8] = []
        for index in 0..<download.chunkCount {
            guard case .plain(let piece) = try await download.chunk(index) else { Issue.record("a sealed chunk reached the reader"); break }
            bytes += piece
        }
        return bytes
    }

    func refusal(_ work: () async throws -> Outcome) async -> ErrorCode? { await refusalCode(work) }

    @Test func aCleanFileIsScannedAndStoredReadable() async throws {
        let hub = try StageHarness(Self.config(onError: "reject"))
        let (room, token) = try expectWelcome(await hub.run(.hello(org: hub.org.id, token: nil), from: 1))
        let file = Self.png(Array(repeating: 7, count: 150_000))
        let outcome = try await attach(hub, file, room: room, token: token, piece: 10_000)
        let attachment = try #require(outcome.attachment)
        #expect(attachment.state == .ready)
        #expect(hub.world.scanner.finishedScans == 1)
        #expect(try await download(hub, attachment.id, token: token) == file)
    }

    @Test func anInfectedFileIsRefusedErasedAndAuditedBySignatureOnly() async throws {
        let hub = try StageHarness(Self.config(onError: "hold"))
        let (room, token) = try expectWelcome(await hub.run(.hello(org: hub.org.id, token: nil), from: 1))
        // The signature falls across pieces of 7 bytes, past the first 64 KiB chunk.
        let file = Self.png(Array(repeating: 1, count: 70_000) + MemoryScanner.eicar + Array(repeating: 2, count: 100))
        #expect(await refusal { try await attach(hub, file, room: room, token: token, name: "CANARYNAME.png") } == .infected)
        #expect(hub.world.attachments.all.isEmpty, "nothing of the file is kept")
        #expect(try await hub.world.messages.history(of: room, limit: 10).isEmpty, "no message carries it")
        let infected = try #require(hub.world.audit.events.first { $0.action == "attachment.infected" })
        #expect(infected.target == room.rawValue)
        #expect(infected.detail.hasPrefix("attachment=a_") && infected.detail.hasSuffix(" signature=CareHub.Test.EICAR"))
        #expect(!hub.world.audit.events.contains { $0.detail.contains("CANARYNAME") })
    }

    @Test func aScannerThatIsDownRejectsTheUploadWhenTheStageRejects() async throws {
        let hub = try StageHarness(Self.config(onError: "reject"))
        let (room, token) = try expectWelcome(await hub.run(.hello(org: hub.org.id, token: nil), from: 1))
        hub.world.scanner.available = false
        #expect(await refusal { try await attach(hub, Self.png([1, 2, 3]), room: room, token: token) } == .unavailable)
        #expect(hub.world.attachments.all.isEmpty)
        #expect(hub.world.events.events.contains(.scannerUnavailable(org: hub.org.id, reason: "the scanner is not answering")))
    }

    @Test func aScannerThatFailsMidFileRejectsItToo() async throws {
        let hub = try StageHarness(Self.config(onError: "reject"))
        let (room, token) = try expectWelcome(await hub.run(.hello(org: hub.org.id, token: nil), from: 1))
        let code = await refusal { try await attach(hub, failingMidway(hub), size: 200_000, room: room, token: token) }
        #expect(code == .unavailable)
        #expect(hub.world.attachments.all.isEmpty)
    }

    /// A PNG of 200,000 bytes whose scanner goes down after the first piece.
    func failingMidway(_ hub: StageHarness) -> AttachmentBytes {
        let source = AttachmentBytes.bytes(Self.png(Array(repeating: 5, count: 199_988)), piece: 50_000)
        let scanner = hub.world.scanner
        let pieces = Counter()
        return AttachmentBytes {
            if pieces.next() == 1 { scanner.available = false }
            return try await source.next()
        }
    }

    @Test func aHeldFileIsUnreadableUntilARescanPassesItAndTheRoomIsTold() async throws {
        let hub = try StageHarness(Self.config(onError: "hold"))
        let (room, token) = try expectWelcome(await hub.run(.hello(org: hub.org.id, token: nil), from: 1))
        _ = await hub.login(2)
        _ = try expectSubscribed(await hub.run(.subscribe(room: room), from: 2))
        hub.world.scanner.available = false
        let file = Self.png(Array(repeating: 9, count: 100_000))
        let held = try #require(try await attach(hub, file, room: room, token: token).attachment)
        #expect(held.state == .held)
        #expect(await refusal { try await hub.pipeline.run({
            var request = hub.world.request(.download(held.id), connection: ConnectionID(98))
            request.credential = token
            return request
        }()) } == .attachmentHeld)
        // Stored sealed like any other file of a HIPAA organisation.
        #expect(try await hub.world.attachments.chunk(held.id, index: 0).map { if case .sealed = $0 { true } else { false } } == true)

        // Still down: the rescan leaves it held.
        hub.world.clock.advance(by: 31)
        await hub.pipeline.tick(at: hub.world.clock.now)
        #expect(try await hub.world.attachments.attachment(held.id)?.state == .held)

        hub.world.scanner.available = true
        hub.world.clock.advance(by: 31)
        await hub.pipeline.tick(at: hub.world.clock.now)
        #expect(try await hub.world.attachments.attachment(held.id)?.state == .ready)
        #expect(hub.delivered(to: 2).contains(.attachmentReady(room: room, attachment: held.id)))
        #expect(hub.world.audit.events.contains { $0.action == "attachment.scanned" && $0.detail == "attachment=\(held.id) result=clean" })
        #expect(try await download(hub, held.id, token: token) == file)
    }

    @Test func aHeldFileFoundInfectedLaterIsErasedAndTheRoomIsTold() async throws {
        let hub = try StageHarness(Self.config(onError: "hold", hipaa: false))
        let (room, token) = try expectWelcome(await hub.run(.hello(org: hub.org.id, token: nil), from: 1))
        _ = await hub.login(2)
        _ = try expectSubscribed(await hub.run(.subscribe(room: room), from: 2))
        hub.world.scanner.available = false
        let held = try #require(try await attach(hub, Self.png(MemoryScanner.eicar), room: room, token: token).attachment)
        #expect(held.state == .held)
        hub.world.scanner.available = true
        hub.world.clock.advance(by: 31)
        await hub.pipeline.tick(at: hub.world.clock.now)
        #expect(try await hub.world.attachments.attachment(held.id) == nil)
        #expect(hub.delivered(to: 2).contains(.attachmentRefused(room: room, attachment: held.id, code: .infected)))
        #expect(hub.world.audit.events.contains {
            $0.action == "attachment.infected" && $0.actor == "system" && $0.detail == "attachment=\(held.id) signature=CareHub.Test.EICAR"
        })
    }

    @Test func signatureNamesAreRecordedInTheirOwnCharactersOnly() {
        #expect(ScanStage.recordable("Win.Test.EICAR_HDB-1") == "Win.Test.EICAR_HDB-1")
        #expect(ScanStage.recordable("CareHub.Test.EICAR.UNOFFICIAL") == "CareHub.Test.EICAR.UNOFFICIAL")
        #expect(ScanStage.recordable("bad name\n=x") == "bad_name__x")
        #expect(ScanStage.recordable(String(repeating: "a", count: 300)).count == 128)
        #expect(ScanStage.recordable("") == "unnamed")
    }
}

/// Counts calls, from 0.
private final class Counter: Sendable {
    private let count = Mutex(0)
    func next() -> Int {
        count.withLock { count in
            defer { count += 1 }
            return count
        }
    }
}

/// A file's notification says a file came, never its name or a byte of it.
@Suite("attachments in notifications")
struct AttachmentNotificationTests {
    @Test func aPreviewOfAFileSaysOnlyThatAFileWasSent() async throws {
        let config = StageHarness.wellnessConfig.replacingOccurrences(of: "hipaa = off\n", with: "hipaa = off\nattachments\n")
            .replacingOccurrences(of: "preview_chars=10", with: "preview_chars=40")
        let hub = try StageHarness(config)
        let (room, token) = try expectWelcome(await hub.run(.hello(org: hub.org.id, token: nil), from: 1))
        let file = ScanStageTests.png(Array("CANARYBYTES".utf8))
        var request = hub.world.request(
            .attach(room: room, upload: AttachmentUpload(name: "CANARYNAME.png", declaredSize: file.count, bytes: .bytes(file))),
            connection: ConnectionID(99))
        request.credential = token
        _ = try await hub.pipeline.run(request)
        let notification = try #require(hub.world.notifier.notifications.last)
        #expect(notification.preview == "(sent a file)")
        let rendered = NotificationTemplate.render(notification, org: hub.org, link: "/staff.html").json
        #expect(!rendered.contains("CANARY"))
    }
}
