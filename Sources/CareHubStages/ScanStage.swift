import CareHubCore
import Foundation
import Synchronization

/// Passes every attachment through a malware scanner (ClamAV's daemon) on its way to the store,
/// before any reader can fetch it.
///
/// The file's pieces go to the scanner as the store takes them, so nothing is held twice and
/// nothing waits in a temporary file. The verdict is asked for before the store hears the file's
/// end: an infected file is refused (`infected`, audited with the signature's name, never the
/// content) and the store erases what it took of it. A scanner that cannot be reached either
/// refuses the upload (`on_error=reject`, `unavailable`) or lets it be stored but not read
/// (`on_error=hold`): the stage scans held files again on its tick, and tells the room
/// `attachment_ready` (or `attachment_refused`) once the scanner has answered.
public struct ScanStage: Stage {
    /// What to do with a file when the scanner cannot be reached.
    public enum OnError: String, Sendable, CaseIterable {
        /// Refuse the upload; the sender may try again.
        case reject
        /// Store it unreadable, and scan it when the scanner is back.
        case hold
    }

    /// Parameters of `stage scan`.
    public struct Configuration: StageConfiguration {
        /// `engine=`: the scanner; `clamd` (ClamAV's daemon), the only one and the default.
        public var engine: String
        /// `socket=`: where the scanner listens, a Unix socket path or `host:port`
        /// (default `/run/clamav/clamd.ctl`, Debian's clamav-daemon).
        public var address: ScannerAddress
        /// `on_error=`: `reject` (the default) or `hold`.
        public var onError: OnError
        /// `retry=`: how often held files are scanned again (default 30s, 1s–1h).
        public var retry: Duration

        public init(parameters: inout StageParameters, org: OrgSettings) throws {
            engine = try parameters.choice("engine", ["clamd"], default: "clamd")
            let socket = parameters.string("socket") ?? "/run/clamav/clamd.ctl"
            guard let address = ScannerAddress(parsing: socket) else {
                throw parameters.error(
                    "expected socket= to be an absolute Unix socket path (at most \(ScannerAddress.maximumPathBytes) bytes) or host:port, found socket=\(socket)")
            }
            self.address = address
            onError = OnError(rawValue: try parameters.choice("on_error", OnError.allCases.map(\.rawValue), default: "reject"))!
            retry = try parameters.duration("retry", in: .seconds(1)...Duration.seconds(3600), default: .seconds(30))
        }

        public var summary: [String] {
            ["engine=\(engine)", "socket=\(address)", "on_error=\(onError.rawValue)"] + (onError == .hold ? ["retry=\(ConfigValue.format(retry))"] : [])
        }
    }

    public static let name = "scan"
    /// After auth (it scans only authorised uploads) and before the store, which takes the bytes
    /// the stage passes on; a HIPAA organisation that takes attachments must run it.
    public static let rules = StageRules(after: ["auth", "idle"], before: ["store"], requiredInHIPAAWithAttachments: true)

    /// How many held files one tick scans at most.
    static let rescanBatch = 20

    private let configuration: Configuration
    private let org: OrgSettings
    private let environment: StageEnvironment
    private let scanner: any MalwareScanner
    private let lastRescan = RevalidationClock()

    public init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment) {
        self.configuration = configuration
        self.org = org
        self.environment = environment
        scanner = environment.scanners.scanner(engine: configuration.engine, address: configuration.address)
    }

    public func handle(_ request: Request, next: Next) async throws -> Outcome {
        guard case .attach(let room, let upload) = request.frame, let session = request.session else { return try await next(request) }
        let check = request.attachmentCheck ?? AttachmentCheck()
        let scan: (any MalwareScan)?
        do {
            scan = try await scanner.begin()
        } catch {
            try unavailable(error)
            check.record(.held)
            scan = nil
        }
        var forwarded = request
        forwarded.attachmentCheck = check
        if let scan {
            let progress = ScanProgress(scan)
            let bytes = upload.bytes.observing({ piece in
                guard let scan = progress.live else { return }
                do {
                    try await scan.feed(piece)
                } catch {
                    try unavailable(error)
                    await progress.giveUp()
                    check.record(.held)
                }
            }, finish: {
                guard let scan = progress.live else { return }
                let verdict: ScanVerdict
                do {
                    verdict = try await scan.finish()
                } catch {
                    try unavailable(error)
                    check.record(.held)
                    return
                }
                switch verdict {
                case .clean:
                    check.record(.clean)
                case .infected(let signature):
                    try await environment.audit.record(AuditEvent(
                        at: environment.clock.now, org: org.id, actor: session.principal.displayName, address: request.peer,
                        action: "attachment.infected", target: room.rawValue,
                        detail: "attachment=\(upload.id.rawValue) signature=\(Self.recordable(signature))"))
                    throw Self.infected
                }
            })
            forwarded.frame = .attach(room: room, upload: AttachmentUpload(id: upload.id, name: upload.name, declaredSize: upload.declaredSize, bytes: bytes))
            do {
                return try await next(forwarded)
            } catch {
                await scan.cancel()
                throw error
            }
        }
        return try await next(forwarded)
    }

    /// What a scanner's failure means for the upload: with `on_error=reject` it is refused;
    /// with `hold` it goes on, to be stored unreadable. Reported to the hub either way.
    private func unavailable(_ error: any Error) throws {
        let reason = (error as? ScannerUnavailable)?.reason ?? "\(type(of: error))"
        environment.events.emit(.scannerUnavailable(org: org.id, reason: reason))
        if configuration.onError == .reject { throw Self.cannotScan }
    }

    /// Every `retry=`: held files of the organisation, scanned again from the store
    /// (opened with the conversation's key where sealed); each that passes becomes readable and
    /// its room hears `attachment_ready`, each found infected is erased (`attachment_refused`).
    /// The hub never runs an organisation's ticks side by side, so rounds do not overlap.
    public func tick(at now: Date) async {
        guard org.attachments != nil, configuration.onError == .hold, lastRescan.due(at: now, every: TimeInterval(configuration.retry.components.seconds)) else { return }
        guard let held = try? await environment.attachments.held(org: org.id, limit: Self.rescanBatch) else { return }
        for attachment in held {
            guard await rescan(attachment) else { return }
        }
    }

    /// Scans one held file again; false if the scanner is still not answering.
    private func rescan(_ attachment: Attachment) async -> Bool {
        let history = SealedHistory(org: org.id, environment: environment)
        let count = Attachment.chunkCount(forSize: attachment.size)
        let verdict: ScanVerdict
        do {
            let scan = try await scanner.begin()
            do {
                for index in 0..<count {
                    guard let chunk = try await environment.attachments.chunk(attachment.id, index: index) else { throw StoredFileGone() }
                    try await scan.feed(try await history.openAttachmentChunk(
                        chunk, id: attachment.id, index: index, last: index == count - 1, in: attachment.conversation))
                }
                verdict = try await scan.finish()
            } catch {
                await scan.cancel()
                throw error
            }
        } catch is StoredFileGone {
            return true  // erased with its chat meanwhile
        } catch {
            if let failure = error as? ScannerUnavailable {
                environment.events.emit(.scannerUnavailable(org: org.id, reason: failure.reason))
                return false
            }
            // The stored file does not open (or the store failed): it stays held, never readable.
            return true
        }
        let members = environment.rooms.members(of: attachment.conversation).map(\.connection)
        do {
            switch verdict {
            case .clean:
                try await environment.attachments.setState(attachment.id, .ready)
                try await environment.audit.record(AuditEvent(
                    at: environment.clock.now, org: org.id, actor: "system", address: "", action: "attachment.scanned",
                    target: attachment.conversation.rawValue, detail: "attachment=\(attachment.id.rawValue) result=clean"))
                environment.rooms.deliver(.attachmentReady(room: attachment.conversation, attachment: attachment.id), to: members)
            case .infected(let signature):
                try await environment.audit.record(AuditEvent(
                    at: environment.clock.now, org: org.id, actor: "system", address: "", action: "attachment.infected",
                    target: attachment.conversation.rawValue,
                    detail: "attachment=\(attachment.id.rawValue) signature=\(Self.recordable(signature))"))
                try await environment.attachments.discard(attachment.id)
                environment.rooms.deliver(
                    .attachmentRefused(room: attachment.conversation, attachment: attachment.id, code: .infected), to: members)
            }
        } catch {
            // Left held; the next round tries again.
        }
        return true
    }

    /// A signature's name as the audit trail keeps it: the scanner's word, limited to the
    /// characters signature names use and to 128 of them.
    public static func recordable(_ signature: String) -> String {
        let kept = signature.unicodeScalars.prefix(128).map { scalar -> Character in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || ".-_:/".unicodeScalars.contains(scalar)) ? Character(scalar) : "_"
        }
        return kept.isEmpty ? "unnamed" : String(kept)
    }

    static let infected = PipelineError(.infected, "this file was refused: the malware scanner found a threat in it")
    static let cannotScan = PipelineError(.unavailable, "files cannot be checked for malware right now; try again in a few minutes")

    /// A held file's chunk was not found: it was erased while it was being scanned.
    private struct StoredFileGone: Error {}
}

/// A scan under way, until a failure of the scanner ends it early.
private final class ScanProgress: Sendable {
    private let scan: Mutex<(any MalwareScan)?>

    init(_ scan: any MalwareScan) { self.scan = Mutex(scan) }

    /// The scan, unless it was given up.
    var live: (any MalwareScan)? { scan.withLock { $0 } }

    /// Gives the scan up; the rest of the file is not scanned.
    func giveUp() async {
        let dropped = scan.withLock { scan in
            defer { scan = nil }
            return scan
        }
        await dropped?.cancel()
    }
}
