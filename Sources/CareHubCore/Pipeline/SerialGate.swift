import Synchronization

/// Runs work for one key at a time, in arrival order, with a bound on how many may wait.
///
/// The auth stage passes each login through it by account, so that parallel attempts for one
/// account are judged one by one: each sees the failures and back-off the previous one recorded.
public final class SerialGate: Sendable {
    private struct Line {
        var waiting: [CheckedContinuation<Bool, Never>] = []
    }

    private let lines = Mutex<[String: Line]>([:])
    private let maxWaiting: Int

    /// A gate where at most `maxWaiting` callers wait behind the one running, per key.
    public init(maxWaiting: Int = 8) {
        self.maxWaiting = maxWaiting
    }

    /// Runs `body` when no other call for `key` is running. Throws `full` without running it
    /// when `maxWaiting` calls already wait for `key`.
    public func run<T>(_ key: String, full: PipelineError, _ body: () async throws -> T) async throws -> T {
        let admitted: Bool = await withCheckedContinuation { continuation in
            let decision = lines.withLock { lines -> Bool? in
                guard lines[key] != nil else {
                    lines[key] = Line()
                    return true
                }
                guard lines[key]!.waiting.count < maxWaiting else { return false }
                lines[key]!.waiting.append(continuation)
                return nil
            }
            if let decision { continuation.resume(returning: decision) }
        }
        guard admitted else { throw full }
        defer {
            let next = lines.withLock { lines -> CheckedContinuation<Bool, Never>? in
                guard var line = lines[key], !line.waiting.isEmpty else {
                    lines.removeValue(forKey: key)
                    return nil
                }
                let first = line.waiting.removeFirst()
                lines[key] = line
                return first
            }
            next?.resume(returning: true)
        }
        return try await body()
    }

    /// Calls waiting behind the one running for `key`.
    public func waiting(for key: String) -> Int {
        lines.withLock { $0[key]?.waiting.count ?? 0 }
    }

    /// Keys with a call running.
    public var busyKeys: Int { lines.withLock { $0.count } }
}
