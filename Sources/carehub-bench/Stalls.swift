import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The machine's own noise: one thread per CPU spins on the clock and counts the time it was kept
/// off its core (gaps over 50 µs between two readings of the clock). On a virtual machine that is
/// mostly the host running something else. A stall delays whatever was running on that CPU, and
/// every message waiting behind it, so it sets a floor under the latency tail of that hour.
struct StallProbe {
    struct Counts: Sendable {
        var spunNanoseconds: UInt64 = 0
        var offCoreNanoseconds: UInt64 = 0
        var over1ms = 0
        var longestNanoseconds: UInt64 = 0
    }

    /// Spins on the calling thread for `nanoseconds`.
    static func spin(for nanoseconds: UInt64) -> Counts {
        var counts = Counts()
        let start = DispatchTime.now().uptimeNanoseconds
        var last = start
        let end = start + nanoseconds
        while last < end {
            let now = DispatchTime.now().uptimeNanoseconds
            let gap = now - last
            last = now
            if gap > 50_000 {
                counts.offCoreNanoseconds += gap
                if gap > 1_000_000 { counts.over1ms += 1 }
            }
            counts.longestNanoseconds = max(counts.longestNanoseconds, gap)
        }
        // The last gap may end past `end`: shares are of the time actually spun.
        counts.spunNanoseconds = last - start
        return counts
    }

    /// Spins one thread per online CPU for `seconds` at once; the report has one entry per thread.
    static func report(seconds: Double) -> [String: Any] {
        let cpus = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let results = Mutex<[Counts]>([])
        let done = DispatchGroup()
        let nanoseconds = UInt64(seconds * 1e9)
        for _ in 0..<cpus {
            done.enter()
            Thread.detachNewThread {
                let counts = spin(for: nanoseconds)
                results.withLock { $0.append(counts) }
                done.leave()
            }
        }
        done.wait()
        let counts = results.withLock { $0 }
        return [
            "scenario": "stalls", "cpus": cpus, "duration_s": seconds,
            "off_core_percent": counts.map { Double($0.offCoreNanoseconds) / Double(max($0.spunNanoseconds, 1)) * 100 },
            "stalls_over_1ms": counts.map(\.over1ms),
            "longest_stall_ms": counts.map { Double($0.longestNanoseconds) / 1e6 },
        ]
    }
}
