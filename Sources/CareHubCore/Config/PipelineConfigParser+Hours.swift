import Foundation

/// `hours = …` and `timezone = …`: an organisation's opening hours (see ``OpeningHours``).
extension PipelineConfigParser {
    /// The form of `hours`, named in messages.
    static let hoursExample = "groups of days and times such as 'mon-fri 08:00-18:00, sat 09:00-12:00'"

    /// Reads the value of `hours =`: comma-separated groups, each a day (`mon` … `sun`, any case)
    /// or a span of days (`mon-fri`, `sat-mon`) followed by one or more ranges `HH:MM-HH:MM`.
    /// A range starts before it ends (no range crosses midnight; `24:00` only ends one), ranges of
    /// a group do not overlap, and a day appears in one group only.
    static func hours(_ value: String) -> Result<[OpeningHours.Group], TokenizeProblem> {
        var groups: [OpeningHours.Group] = []
        // Each day, with the days word of the group that opened it as written.
        var owners: [OpeningHours.Weekday: String] = [:]
        for part in value.split(separator: ",", omittingEmptySubsequences: false) {
            let words = part.split(whereSeparator: \.isWhitespace).map(String.init)
            guard let daysWord = words.first else {
                return .failure(TokenizeProblem(message: "expected hours to be \(hoursExample), found an empty group between commas"))
            }
            let first: OpeningHours.Weekday
            let last: OpeningHours.Weekday
            switch days(daysWord) {
            case .success(let span): (first, last) = span
            case .failure(let problem): return .failure(problem)
            }
            guard words.count >= 2 else {
                return .failure(TokenizeProblem(message: "expected one or more times such as 08:00-18:00 after '\(daysWord)'"))
            }
            var ranges: [OpeningHours.TimeRange] = []
            for word in words.dropFirst() {
                let range: OpeningHours.TimeRange
                switch timeRange(word, first: first, last: last) {
                case .success(let read): range = read
                case .failure(let problem): return .failure(problem)
                }
                if let earlier = ranges.first(where: { $0.overlaps(range) }) {
                    return .failure(TokenizeProblem(message:
                        "'\(word)' overlaps '\(earlier.configText)' in '\(daysWord)'; the ranges of a day may not share a minute"))
                }
                ranges.append(range)
            }
            let group = OpeningHours.Group(first: first, last: last, ranges: ranges)
            for day in group.days {
                if let owner = owners[day] {
                    let which = first == last ? "'\(daysWord)'" : "'\(day.abbreviation)' (in '\(daysWord)')"
                    return .failure(TokenizeProblem(message:
                        "\(which) is already in '\(owner)' on this line; give a day all its ranges in one group, such as 'mon 08:00-12:00 13:00-18:00'"))
                }
                owners[day] = daysWord
            }
            groups.append(group)
        }
        return .success(groups)
    }

    /// Reads `mon` or `mon-fri` (any case) as the first and last day.
    static func days(_ word: String) -> Result<(OpeningHours.Weekday, OpeningHours.Weekday), TokenizeProblem> {
        func day(_ text: Substring) -> OpeningHours.Weekday? {
            OpeningHours.Weekday.allCases.first { $0.abbreviation == text.lowercased() }
        }
        let parts = word.split(separator: "-", omittingEmptySubsequences: false)
        guard let first = parts.first.flatMap(day), parts.count <= 2, let last = parts.count == 2 ? day(parts[1]) : first else {
            if word.contains(":") {
                return .failure(TokenizeProblem(message: "expected a day (mon … sun) or a span such as mon-fri before '\(word)'; each group starts with its days"))
            }
            return .failure(TokenizeProblem(message: "expected a day (mon, tue, wed, thu, fri, sat or sun) or a span such as mon-fri, found '\(word)'"))
        }
        if parts.count == 2 && first == last {
            return .failure(TokenizeProblem(message:
                "'\(word)' starts and ends on the same day; write '\(first.abbreviation)' for that day or '\(first.abbreviation)-\(first.advanced(by: 6).abbreviation)' for the whole week"))
        }
        return .success((first, last))
    }

    /// Reads `HH:MM-HH:MM`, a range of the group from `first` to `last` (named in the advice on
    /// a range that crosses midnight).
    static func timeRange(_ word: String, first: OpeningHours.Weekday, last: OpeningHours.Weekday) -> Result<OpeningHours.TimeRange, TokenizeProblem> {
        let malformed = TokenizeProblem(message: "expected a time range HH:MM-HH:MM such as 08:00-18:00, found '\(word)'")
        let parts = word.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let start = clock(parts[0]), let end = clock(parts[1]) else { return .failure(malformed) }
        for (text, time) in [(parts[0], start), (parts[1], end)] where time.minute > 59 || time.hour * 60 + time.minute > 24 * 60 {
            return .failure(TokenizeProblem(message: "expected times from 00:00 to 24:00, found '\(text)' in '\(word)'"))
        }
        let from = start.hour * 60 + start.minute
        let to = end.hour * 60 + end.minute
        if from == 24 * 60 {
            return .failure(TokenizeProblem(message: "'\(word)' starts at 24:00, which ends a day; start it at 00:00 of the next day"))
        }
        if from == to {
            return .failure(TokenizeProblem(message: "'\(word)' is empty; a range ends after it starts"))
        }
        if to == 0 {
            return .failure(TokenizeProblem(message: "'\(word)' ends at midnight; write it as '\(OpeningHours.TimeRange(start: from, end: 24 * 60).configText)'"))
        }
        if to < from {
            let days = OpeningHours.Group(first: first, last: last, ranges: []).daysText
            let nextDays = OpeningHours.Group(first: first.advanced(by: 1), last: last.advanced(by: 1), ranges: []).daysText
            let evening = OpeningHours.TimeRange(start: from, end: 24 * 60).configText
            let morning = OpeningHours.TimeRange(start: 0, end: to).configText
            return .failure(TokenizeProblem(message:
                "'\(word)' crosses midnight; write it as two groups, e.g. '\(days) \(evening), \(nextDays) \(morning)'"))
        }
        return .success(OpeningHours.TimeRange(start: from, end: to))
    }

    /// The hour and minute of `HH:MM` (two ASCII digits each, not range checked), or nil when
    /// the text is not of that form.
    private static func clock(_ text: Substring) -> (hour: Int, minute: Int)? {
        let bytes = Array(text.utf8)
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        guard bytes.count == 5, bytes[2] == UInt8(ascii: ":"), [0, 1, 3, 4].allSatisfy({ digits.contains(bytes[$0]) }) else { return nil }
        let digit = { (index: Int) in Int(bytes[index] - UInt8(ascii: "0")) }
        return (digit(0) * 10 + digit(1), digit(3) * 10 + digit(4))
    }

    /// Reads the value of `timezone =`: an IANA time zone name Foundation knows.
    static func timeZone(_ value: String) -> Result<TimeZone, TokenizeProblem> {
        // Names are short and plain (America/Argentina/ComodRivadavia is the longest); anything
        // else is refused before Foundation looks it up.
        let plain = value.utf8.count <= 64 && value.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "/_+-".unicodeScalars.contains(scalar))
        }
        guard plain, !value.hasPrefix("/"), !value.contains(".."), let zone = TimeZone(identifier: value) else {
            return .failure(TokenizeProblem(message: "unknown time zone '\(value)'; expected an IANA name such as Europe/Paris or America/Chicago"))
        }
        return .success(zone)
    }
}
