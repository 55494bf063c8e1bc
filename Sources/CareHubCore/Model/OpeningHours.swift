import Foundation

/// When an organisation is open, on the wall clock of its time zone (`hours =` and `timezone =`
/// in pipeline.conf).
///
/// ```swift
/// let hours = OpeningHours(groups: [
///     .init(first: .monday, last: .friday, ranges: [.init(start: 8 * 60, end: 18 * 60)]),
///     .init(first: .saturday, last: .saturday, ranges: [.init(start: 9 * 60, end: 12 * 60)]),
/// ], timeZone: TimeZone(identifier: "America/Chicago")!)
/// hours.description  // "Mon–Fri 08:00–18:00, Sat 09:00–12:00"
/// ```
///
/// Ranges are half-open: a range `08:00-18:00` is open from 08:00 up to, not including, 18:00.
/// Times are read on the local wall clock, so a day on which the clocks change is as long as it
/// is: on the night clocks go back, an hour that happens twice is open (or closed) both times; on
/// the night they go forward, an opening in the skipped hour happens when the clocks reach it.
public struct OpeningHours: Sendable, Hashable, CustomStringConvertible {
    /// A day of the week, Monday first.
    public enum Weekday: Int, Sendable, Hashable, CaseIterable {
        /// Monday.
        case monday
        /// Tuesday.
        case tuesday
        /// Wednesday.
        case wednesday
        /// Thursday.
        case thursday
        /// Friday.
        case friday
        /// Saturday.
        case saturday
        /// Sunday.
        case sunday

        /// The day as written in pipeline.conf: `mon` … `sun`.
        public var abbreviation: String { ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][rawValue] }

        /// The day as shown to people: `Mon` … `Sun`.
        public var shortName: String { ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][rawValue] }

        /// The day `offset` days later (earlier when negative), wrapping around the week.
        public func advanced(by offset: Int) -> Weekday {
            Weekday(rawValue: ((rawValue + offset) % 7 + 7) % 7)!
        }

        /// The day of `Calendar`'s `.weekday` component (1 is Sunday).
        init(calendarWeekday: Int) {
            self = Weekday(rawValue: ((calendarWeekday + 5) % 7 + 7) % 7)!
        }
    }

    /// A stretch of one day, in minutes after local midnight: `start` from 0 to 1439, `end` from
    /// 1 to 1440 (24:00) and after `start`.
    public struct TimeRange: Sendable, Hashable, CustomStringConvertible {
        /// The first minute open.
        public let start: Int
        /// The first minute closed again.
        public let end: Int

        /// Creates a range from `start` up to `end`, both minutes after midnight.
        public init(start: Int, end: Int) {
            self.start = start
            self.end = end
        }

        /// Whether the minute `minute` (after midnight) is in the range.
        public func contains(_ minute: Int) -> Bool { start <= minute && minute < end }

        /// Whether the two ranges share a minute.
        public func overlaps(_ other: TimeRange) -> Bool { start < other.end && other.start < end }

        /// `08:00–18:00`, with an en dash.
        public var description: String { "\(Self.clock(start))–\(Self.clock(end))" }

        /// `08:00-18:00`, as written in pipeline.conf.
        public var configText: String { "\(Self.clock(start))-\(Self.clock(end))" }

        /// `HH:MM` for a minute of the day (`24:00` for 1440).
        static func clock(_ minute: Int) -> String {
            let hours = minute / 60
            let minutes = minute % 60
            return (hours < 10 ? "0" : "") + "\(hours):" + (minutes < 10 ? "0" : "") + "\(minutes)"
        }
    }

    /// One group of pipeline.conf: the days from `first` to `last` (wrapping past Sunday, as
    /// `sat-mon`; one day when they are equal), each open during `ranges`.
    public struct Group: Sendable, Hashable, CustomStringConvertible {
        /// The first day of the group.
        public let first: Weekday
        /// The last day of the group; `first` for a single day.
        public let last: Weekday
        /// The ranges open on each of its days, in the order written.
        public let ranges: [TimeRange]

        /// Creates a group.
        public init(first: Weekday, last: Weekday, ranges: [TimeRange]) {
            self.first = first
            self.last = last
            self.ranges = ranges
        }

        /// Its days in order, from `first` to `last`.
        public var days: [Weekday] {
            let count = ((last.rawValue - first.rawValue) % 7 + 7) % 7 + 1
            return (0..<count).map { first.advanced(by: $0) }
        }

        /// `mon-fri` or `sat`, as written in pipeline.conf.
        public var daysText: String { first == last ? first.abbreviation : "\(first.abbreviation)-\(last.abbreviation)" }

        /// `Mon–Fri 08:00–12:00 13:00–18:00`.
        public var description: String {
            ([first == last ? first.shortName : "\(first.shortName)–\(last.shortName)"] + ranges.map(\.description)).joined(separator: " ")
        }

        /// `mon-fri 08:00-12:00 13:00-18:00`, as written in pipeline.conf.
        public var configText: String { ([daysText] + ranges.map(\.configText)).joined(separator: " ") }
    }

    /// The groups, in the order written.
    public let groups: [Group]
    /// The time zone whose wall clock the hours follow.
    public let timeZone: TimeZone

    /// Creates opening hours. Groups are taken as given: pipeline.conf's checks (a day in one group
    /// only, ranges that do not overlap) are the parser's; a range that is empty opens nothing.
    /// `timeZoneName` is the name as the file gives it (Foundation reports `UTC` as `GMT`).
    public init(groups: [Group], timeZone: TimeZone, timeZoneName: String? = nil) {
        self.groups = groups
        self.timeZone = timeZone
        self.timeZoneIdentifier = timeZoneName ?? timeZone.identifier
    }

    /// The IANA name of the time zone, such as `America/Chicago`.
    public let timeZoneIdentifier: String

    /// `Mon–Fri 08:00–18:00, Sat 09:00–12:00`: the groups as written, with en dashes.
    public var description: String { groups.map(\.description).joined(separator: ", ") }

    /// `mon-fri 08:00-18:00, sat 09:00-12:00`: the `hours =` value that reads back as these hours.
    public var configText: String { groups.map(\.configText).joined(separator: ", ") }

    /// The ranges open on `day`.
    public func ranges(on day: Weekday) -> [TimeRange] {
        groups.filter { $0.days.contains(day) }.flatMap(\.ranges)
    }

    /// Whether the organisation is open at `date`, on the wall clock of its time zone.
    public func isOpen(at date: Date) -> Bool {
        let (day, minute) = wallClock(date)
        return ranges(on: day).contains { $0.contains(minute) }
    }

    /// The next moment after `date` at which the organisation opens; nil when it is open at `date`
    /// or never opens.
    public func nextOpening(after date: Date) -> Date? {
        guard !isOpen(at: date) else { return nil }
        let calendar = self.calendar
        let today = calendar.startOfDay(for: date)
        var candidates: [Date] = []
        // A week and a day ahead holds the next opening of any weekly schedule.
        for offset in 0...8 {
            guard let noon = calendar.date(byAdding: DateComponents(day: offset, hour: 12), to: today) else { continue }
            let (day, _) = wallClock(noon)
            var local = calendar.dateComponents([.year, .month, .day], from: noon)
            for range in ranges(on: day) where range.start < range.end {
                local.hour = range.start / 60
                local.minute = range.start % 60
                guard let start = calendar.date(from: local) else { continue }
                // On the night clocks go back a wall-clock time happens twice; consider both.
                for shift in -2...2 {
                    let instant = start.addingTimeInterval(Double(shift) * 1800)
                    if calendar.dateComponents([.year, .month, .day, .hour, .minute], from: instant) == local {
                        candidates.append(instant)
                    }
                }
            }
        }
        guard !candidates.isEmpty else { return nil }
        // An opening inside the hour skipped when clocks go forward happens as the clocks jump.
        let horizon = today.addingTimeInterval(10 * 86_400)
        var transition = date
        while let next = timeZone.nextDaylightSavingTimeTransition(after: transition), next > transition, next < horizon {
            candidates.append(next)
            transition = next
        }
        return candidates.filter { $0 > date && isOpen(at: $0) }.min()
    }

    /// A Gregorian calendar in the organisation's time zone.
    private var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        return calendar
    }

    /// The local day of the week and minute after midnight of `date`.
    private func wallClock(_ date: Date) -> (day: Weekday, minute: Int) {
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        return (Weekday(calendarWeekday: parts.weekday ?? 2), (parts.hour ?? 0) * 60 + (parts.minute ?? 0))
    }
}
