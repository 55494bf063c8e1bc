import CareHubCore
import CareHubStorage
import Foundation
import Synchronization

/// Counters for `GET /metrics`, in the Prometheus text format. Ids and counts only.
final class HubMetrics: StageTimer {
    private struct Key: Hashable { let org: String; let type: String }
    private struct State {
        var requests: [Key: (count: UInt64, seconds: Double)] = [:]
        var errors: [String: UInt64] = [:]
        var stages: [Key: StageHistogram] = [:]
    }
    /// One organisation's stage's histogram, with a lock of its own: stages record into it
    /// directly, without the lookup by name or the lock shared by every counter.
    private final class StageHistogram: Sendable {
        let histogram = Mutex(Histogram())
    }
    /// A cumulative latency histogram with fixed bucket bounds.
    struct Histogram {
        static let bounds: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
        var counts = [UInt64](repeating: 0, count: bounds.count)
        var count: UInt64 = 0
        var sum: Double = 0

        mutating func record(_ seconds: Double) {
            if let index = Self.bounds.firstIndex(where: { seconds <= $0 }) { counts[index] += 1 }
            count += 1
            sum += seconds
        }
    }
    private let state = Mutex(State())
    /// Connections whose reading is paused now (their inbox is full), and pauses since start.
    private let receivePaused = Atomic<Int>(0)
    private let receivePauses = Atomic<Int>(0)

    /// A connection's inbox filled up and its reading paused.
    func receivingPaused() {
        receivePaused.add(1, ordering: .relaxed)
        receivePauses.add(1, ordering: .relaxed)
    }

    /// A paused connection's inbox drained and its reading resumed.
    func receivingResumed() { receivePaused.subtract(1, ordering: .relaxed) }

    /// The transport's queue figures.
    struct Queues: Sendable {
        var sendQueueBytes = 0
        var slowReaderCloses = 0
    }

    func recorder(org: OrgID, stage: String) -> @Sendable (Double) -> Void {
        // A pipeline rebuilt (a reload) finds its stages' histograms again and keeps counting.
        let slot = state.withLock { state in
            let key = Key(org: org.rawValue, type: stage)
            if let slot = state.stages[key] { return slot }
            let slot = StageHistogram()
            state.stages[key] = slot
            return slot
        }
        return { seconds in slot.histogram.withLock { $0.record(seconds) } }
    }

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

    func render(
        backlog: Backlog, connections: Int, sessions: [Session], storage: SQLiteMessageStore.Statistics, refusals: [String: UInt64] = [:],
        queues: Queues = Queues()
    ) -> String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { out += "\(name)\(labels) \(value)\n" }
        }
        let snapshot = state.withLock { $0 }
        metric("carehub_connections", "gauge", "Open WebSocket connections.", [("", "\(connections)")])
        metric("carehub_connections_receive_paused", "gauge", "Connections whose reading is paused because their inbox is full.",
               [("", "\(receivePaused.load(ordering: .relaxed))")])
        metric("carehub_receive_pauses_total", "counter", "Times a connection's reading paused because its inbox was full.",
               [("", "\(receivePauses.load(ordering: .relaxed))")])
        metric("carehub_send_queue_bytes", "gauge", "Bytes queued for connections and not yet written, over all connections.",
               [("", "\(queues.sendQueueBytes)")])
        metric("carehub_slow_reader_closes_total", "counter", "Connections closed (4001) because they did not read what was sent to them fast enough.",
               [("", "\(queues.slowReaderCloses)")])
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
        metric("carehub_rate_limited_total", "counter",
               "Requests and connections refused by a limit, by limit (never by address or organisation name chosen by a stranger).",
               refusals.keys.sorted().map { ("{limit=\"\($0)\"}", "\(refusals[$0]!)") })
        metric("carehub_messages_committed_total", "counter", "Messages durably committed.", [("", "\(storage.messages)")])
        metric("carehub_commits_total", "counter", "Storage transactions (group commits).", [("", "\(storage.commits)")])
        metric("carehub_commit_batch_max", "gauge", "Largest number of messages in one commit.", [("", "\(storage.largestBatch)")])
        var commitBuckets: [(String, String)] = []
        var cumulative: UInt64 = 0
        for (index, bound) in SQLiteMessageStore.Statistics.commitBounds.enumerated() {
            cumulative += storage.commitDurations[index]
            commitBuckets.append(("_bucket{le=\"\(bound)\"}", "\(cumulative)"))
        }
        commitBuckets.append(("_bucket{le=\"+Inf\"}", "\(storage.commits)"))
        commitBuckets.append(("_sum", String(format: "%.6f", storage.commitSeconds)))
        commitBuckets.append(("_count", "\(storage.commits)"))
        metric("carehub_commit_seconds", "histogram", "How long message commits took, fsync included.", commitBuckets)
        let stageKeys = snapshot.stages.keys.sorted { ($0.org, $0.type) < ($1.org, $1.type) }
        let stages = snapshot.stages.mapValues { slot in slot.histogram.withLock { $0 } }
        var buckets: [(String, String)] = []
        for key in stageKeys {
            let histogram = stages[key]!
            var cumulative: UInt64 = 0
            for (index, bound) in Histogram.bounds.enumerated() {
                cumulative += histogram.counts[index]
                buckets.append(("{org=\"\(key.org)\",stage=\"\(key.type)\",le=\"\(bound)\"}", "\(cumulative)"))
            }
            buckets.append(("{org=\"\(key.org)\",stage=\"\(key.type)\",le=\"+Inf\"}", "\(histogram.count)"))
        }
        out += "# HELP carehub_stage_seconds Time from entering a stage until it returned, including the stages after it.\n"
        out += "# TYPE carehub_stage_seconds histogram\n"
        for (labels, value) in buckets { out += "carehub_stage_seconds_bucket\(labels) \(value)\n" }
        for key in stageKeys {
            let labels = "{org=\"\(key.org)\",stage=\"\(key.type)\"}"
            out += "carehub_stage_seconds_sum\(labels) \(String(format: "%.6f", stages[key]!.sum))\n"
            out += "carehub_stage_seconds_count\(labels) \(stages[key]!.count)\n"
        }
        metric("carehub_purge_pending", "gauge", "Ended conversations whose export and purge have not completed, by organisation.",
               backlog.pendingPurges.keys.sorted().map { ("{org=\"\($0)\"}", "\(backlog.pendingPurges[$0]!)") })
        metric("carehub_notifications", "gauge", "Outbox notifications by organisation and state (pending, sent, refused, failed).",
               backlog.outbox.map { ("{org=\"\($0.org)\",state=\"\($0.state)\"}", "\($0.count)") })
        return out
    }
}
