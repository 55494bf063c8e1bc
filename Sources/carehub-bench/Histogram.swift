/// A log-linear latency histogram in microseconds (HDR-style: 3 significant digits), cheap to
/// record into and exact enough for p99.9 and max.
struct Histogram {
    private static let subBuckets = 1024
    private static let half = subBuckets / 2
    private var counts = [UInt64](repeating: 0, count: subBuckets + 40 * half)
    private(set) var total: UInt64 = 0
    private(set) var maximum: UInt64 = 0

    private static func index(_ value: UInt64) -> Int {
        if value < UInt64(subBuckets) { return Int(value) }
        let shift = (64 - value.leadingZeroBitCount) - 10
        return subBuckets + (shift - 1) * half + Int(value >> UInt64(shift)) - half
    }

    private static func upperBound(_ index: Int) -> UInt64 {
        if index < subBuckets { return UInt64(index) }
        let shift = (index - subBuckets) / half + 1
        let mantissa = UInt64((index - subBuckets) % half + half)
        return ((mantissa + 1) << UInt64(shift)) - 1
    }

    mutating func record(_ microseconds: UInt64) {
        counts[min(Self.index(microseconds), counts.count - 1)] += 1
        total += 1
        maximum = max(maximum, microseconds)
    }

    /// The value at or below which `quantile` of the recordings fall.
    func value(at quantile: Double) -> UInt64 {
        guard total > 0 else { return 0 }
        let rank = UInt64((quantile * Double(total)).rounded(.up))
        var seen: UInt64 = 0
        for (index, count) in counts.enumerated() where count > 0 {
            seen += count
            if seen >= max(rank, 1) { return min(Self.upperBound(index), maximum) }
        }
        return maximum
    }
}
