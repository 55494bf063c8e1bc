import Foundation
import Synchronization

/// A sustained rate with a burst: `count` every `per` seconds, at most `burst` at once.
public struct Rate: Sendable, Hashable {
    /// How many in each period.
    public var count: Int
    /// The period, in seconds.
    public var per: TimeInterval
    /// How many may come at once before the rate applies (at least 1).
    public var burst: Int

    /// Creates a rate; `burst` defaults to `count`.
    public init(_ count: Int, per: TimeInterval, burst: Int? = nil) {
        self.count = max(1, count)
        self.per = max(0.001, per)
        self.burst = max(1, burst ?? count)
    }

    /// `count` a minute.
    public static func perMinute(_ count: Int) -> Rate { Rate(count, per: 60) }
}

/// Token buckets keyed by what they limit (an address, an organisation, a conversation).
///
/// Pure bookkeeping: time is passed in, nothing blocks, every call is one short lock. The table
/// is bounded: a full bucket says nothing and is dropped first; past `capacity` keys (an attack
/// from many addresses) the oldest are dropped, which can only let a request through that an
/// unbounded table would have refused, never refuse one it would have let through.
public final class RateLimiter: Sendable {
    /// One limited thing: `limit` names the rule (a metric label, never a value a stranger
    /// chose), `scope` the address, organisation or conversation it applies to.
    public struct Key: Sendable, Hashable {
        public let limit: String
        public let scope: String
        public init(_ limit: String, _ scope: String) {
            self.limit = limit
            self.scope = scope
        }
    }

    private struct Bucket {
        var tokens: Double
        var updated: Date
    }

    private struct State {
        var buckets: [Key: Bucket] = [:]
        var refusals: [String: UInt64] = [:]
    }

    private let state = Mutex(State())
    private let capacity: Int

    /// A limiter holding at most `capacity` buckets.
    public init(capacity: Int = 100_000) {
        self.capacity = max(16, capacity)
    }

    /// Takes one from `key`'s bucket. Returns nil when admitted, or how many seconds until one
    /// would be (the request is refused and counted under `key.limit`).
    public func take(_ key: Key, rate: Rate, at now: Date) -> TimeInterval? {
        state.withLock { state in
            let refill = Double(rate.count) / rate.per
            var bucket = state.buckets[key] ?? Bucket(tokens: Double(rate.burst), updated: now)
            let elapsed = max(0, now.timeIntervalSince(bucket.updated))
            bucket.tokens = min(Double(rate.burst), bucket.tokens + elapsed * refill)
            bucket.updated = now
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                if state.buckets[key] == nil && state.buckets.count >= capacity { Self.prune(&state, rate: rate, at: now, capacity: capacity) }
                state.buckets[key] = bucket
                return nil
            }
            state.buckets[key] = bucket
            state.refusals[key.limit, default: 0] += 1
            return (1 - bucket.tokens) / refill
        }
    }

    /// Counts a refusal decided elsewhere (a cap on open connections, not a rate).
    public func countRefusal(_ limit: String) {
        state.withLock { $0.refusals[limit, default: 0] += 1 }
    }

    /// Refusals so far, by limit name.
    public var refusals: [String: UInt64] { state.withLock { $0.refusals } }

    /// Buckets held now.
    public var count: Int { state.withLock { $0.buckets.count } }

    private static func prune(_ state: inout State, rate: Rate, at now: Date, capacity: Int) {
        // Buckets untouched for a whole period have refilled at any rate this hub uses; then the
        // oldest half if that was not enough.
        state.buckets = state.buckets.filter { now.timeIntervalSince($0.value.updated) < max(rate.per, 60) }
        if state.buckets.count >= capacity {
            let keep = state.buckets.sorted { $0.value.updated > $1.value.updated }.prefix(capacity / 2)
            state.buckets = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
        }
    }
}

extension PipelineError {
    /// `rate_limited`, saying what was limited and when to retry.
    public static func rateLimited(_ what: String, retryAfter seconds: TimeInterval) -> PipelineError {
        let wait = max(1, Int(min(seconds, 86_400).rounded(.up)))
        var error = PipelineError(.rateLimited, "\(what); retry in \(wait) s")
        error.retryAfter = wait
        return error
    }
}
