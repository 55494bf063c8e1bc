import CareHubAudit
import CareHubStorage
import Dispatch
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Keeps the audit trail's signed heads outside the database, so that a database rolled back or
/// rewritten as a whole can be caught by `carehub audit verify --head-file`.
///
/// Each head is logged as `audit head seq=… hash=… sig=…` (ids and MACs, no PHI) and, with an
/// anchor file, appended to it as that same line and fsync'd (the file is kept at mode 0600).
/// The work runs on its own queue, never on the committing writer's thread, and at most once a
/// second: the newest head wins, since it covers every earlier one. ``flush()`` writes the newest
/// at once (the hub calls it at shutdown, through ``SQLiteAuditLog/checkpoint()``).
final class AuditAnchor: AuditHeadSink {
    private struct State {
        var pending: AuditHead?
        var scheduled = false
        var lastWrite: DispatchTime?
    }

    private let logger: Logger
    private let descriptor: Int32?
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "carehub.audit-anchor")
    private static let interval = DispatchTimeInterval.seconds(1)

    /// Opens (creating it with mode 0600) the anchor file at `path` for appending, when given.
    init(path: String?, logger: Logger) throws {
        self.logger = logger
        guard let path else {
            descriptor = nil
            return
        }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0, fchmod(fd, 0o600) == 0 else {
            let reason = String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            throw HubError.auditAnchor("cannot open \(path) for appending: \(reason)")
        }
        descriptor = fd
    }

    deinit {
        if let descriptor { close(descriptor) }
    }

    func publish(_ head: AuditHead) {
        let delay = state.withLock { state -> DispatchTime? in
            state.pending = head
            guard !state.scheduled else { return nil }
            state.scheduled = true
            return state.lastWrite.map { $0 + Self.interval } ?? .now()
        }
        if let delay { queue.asyncAfter(deadline: delay) { self.writePending() } }
    }

    func flush() {
        queue.sync { writePending() }
    }

    private func writePending() {
        let head = state.withLock { state -> AuditHead? in
            defer { state.pending = nil; state.scheduled = false }
            if state.pending != nil { state.lastWrite = .now() }
            return state.pending
        }
        guard let head else { return }
        let line = "audit head \(head)"
        logger.info("\(line)")
        guard let descriptor else { return }
        let bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else {
                logger.error("cannot append to the audit anchor file", metadata: ["error": "\(String(cString: strerror(errno)))"])
                return
            }
            offset += written
        }
        if fsync(descriptor) != 0 {
            logger.error("cannot sync the audit anchor file", metadata: ["error": "\(String(cString: strerror(errno)))"])
        }
    }
}
