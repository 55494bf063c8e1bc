import CareHubCore
import Foundation
import Synchronization

/// Counters for `GET /metrics`, in the Prometheus text format. Ids and counts only.
final class HubMetrics: Sendable {
    private struct Key: Hashable { let org: String; let type: String }
    private struct State {
        var requests: [Key: (count: UInt64, seconds: Double)] = [:]
        var errors: [String: UInt64] = [:]
    }
    private let state = Mutex(State())

    /// Records one handled frame and, if it failed, its error code.
    func record(org: OrgID?, type: String, seconds: Double, error: ErrorCode?) {
        state.withLock { state in
            let key = Key(org: org?.rawValue ?? "", type: type)
            let current = state.requests[key] ?? (0, 0)
            state.requests[key] = (current.count + 1, current.seconds + seconds)
            if let error { state.errors[error.rawValue, default: 0] += 1 }
        }
    }

    /// Work waiting outside the request path, refreshed every few seconds.
    struct Backlog: Sendable {
        var pendingPurges: [OrgID: Int] = [:]
        var outbox: [(org: OrgID, state: String, count: Int)] = []
    }

    func render(backlog: Backlog, connections: Int, sessions: [Session], messagesCommitted: Int, commits: Int, largestBatch: Int) -> String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { out += "\(name)\(labels) \(value)\n" }
        }
        let snapshot = state.withLock { $0 }
        metric("carehub_connections", "gauge", "Open WebSocket connections.", [("", "\(connections)")])
        var bySession: [String: Int] = [:]
        for session in sessions { bySession["{org=\"\(session.org.rawValue)\",kind=\"\(session.principal.isStaff ? "staff" : "visitor")\"}", default: 0] += 1 }
        metric("carehub_sessions", "gauge", "Live sessions by organisation and kind.", bySession.keys.sorted().map { ($0, "\(bySession[$0]!)") })
        let keys = snapshot.requests.keys.sorted { ($0.org, $0.type) < ($1.org, $1.type) }
        metric("carehub_frames_total", "counter", "Frames handled by the pipeline, by organisation and type.",
               keys.map { ("{org=\"\($0.org)\",type=\"\($0.type)\"}", "\(snapshot.requests[$0]!.count)") })
        metric("carehub_frame_seconds_sum", "counter", "Time spent in the pipeline, by organisation and type.",
               keys.map { ("{org=\"\($0.org)\",type=\"\($0.type)\"}", String(format: "%.6f", snapshot.requests[$0]!.seconds)) })
        metric("carehub_frame_errors_total", "counter", "Frames answered with an error, by code (auth_failed counts failed logins).",
               snapshot.errors.keys.sorted().map { ("{code=\"\($0)\"}", "\(snapshot.errors[$0]!)") })
        metric("carehub_messages_committed_total", "counter", "Messages durably committed.", [("", "\(messagesCommitted)")])
        metric("carehub_commits_total", "counter", "Storage transactions (group commits).", [("", "\(commits)")])
        metric("carehub_commit_batch_max", "gauge", "Largest number of messages in one commit.", [("", "\(largestBatch)")])
        metric("carehub_purge_pending", "gauge", "Ended conversations whose export and purge have not completed, by organisation.",
               backlog.pendingPurges.keys.sorted().map { ("{org=\"\($0)\"}", "\(backlog.pendingPurges[$0]!)") })
        metric("carehub_notifications", "gauge", "Outbox notifications by organisation and state (pending, sent, refused, failed).",
               backlog.outbox.map { ("{org=\"\($0.org)\",state=\"\($0.state)\"}", "\($0.count)") })
        return out
    }
}
