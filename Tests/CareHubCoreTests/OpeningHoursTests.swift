import CareHubCore
import CareHubStages
import Foundation
import Testing

/// `2026-03-08T13:00:00Z`.
func instant(_ iso: String) -> Date {
    let formatter = ISO8601DateFormatter()
    guard let date = formatter.date(from: iso) else { fatalError("bad test date \(iso)") }
    return date
}

/// The opening hours of `hours = value` and `timezone = zone` as pipeline.conf reads them.
func openingHours(_ value: String, zone: String = "America/New_York") throws -> OpeningHours {
    let text = "[org a]\nhipaa = off\nstage auth\nstage store\nstage fanout\nhours = \(value)\ntimezone = \(zone)"
    return try #require(try StageRegistry.standard.load(text, file: "test.conf").orgs.first?.settings.hours)
}

@Suite("opening hours")
struct OpeningHoursTests {
    @Test func theWallClockDecidesOnTheDayClocksGoForward() throws {
        // New York: 2026-03-08 02:00 EST becomes 03:00 EDT, so 09:00 is 14:00Z on Saturday and 13:00Z on Sunday.
        let hours = try openingHours("mon-sun 09:00-17:00")
        #expect(!hours.isOpen(at: instant("2026-03-07T13:59:59Z")))
        #expect(hours.isOpen(at: instant("2026-03-07T14:00:00Z")))
        #expect(!hours.isOpen(at: instant("2026-03-08T12:59:59Z")))
        #expect(hours.isOpen(at: instant("2026-03-08T13:00:00Z")))
        #expect(hours.isOpen(at: instant("2026-03-08T20:59:59Z")))
        #expect(!hours.isOpen(at: instant("2026-03-08T21:00:00Z")))
        #expect(hours.nextOpening(after: instant("2026-03-07T23:00:00Z")) == instant("2026-03-08T13:00:00Z"))
    }

    @Test func theWallClockDecidesOnTheDayClocksGoBack() throws {
        // 2026-11-01 02:00 EDT becomes 01:00 EST: 09:00 is 13:00Z on Saturday and 14:00Z on Sunday.
        let hours = try openingHours("mon-sun 09:00-17:00")
        #expect(hours.isOpen(at: instant("2026-10-31T13:00:00Z")))
        #expect(!hours.isOpen(at: instant("2026-11-01T13:30:00Z")))
        #expect(hours.isOpen(at: instant("2026-11-01T14:00:00Z")))
        #expect(hours.nextOpening(after: instant("2026-10-31T22:00:00Z")) == instant("2026-11-01T14:00:00Z"))
    }

    @Test func anOpeningInTheSkippedHourHappensAsTheClocksJump() throws {
        // 02:30 does not exist on 2026-03-08 in New York; at 07:00Z the clocks read 03:00, inside the range.
        let hours = try openingHours("sun 02:30-04:00")
        #expect(!hours.isOpen(at: instant("2026-03-08T06:59:59Z")))
        #expect(hours.isOpen(at: instant("2026-03-08T07:00:00Z")))
        #expect(hours.nextOpening(after: instant("2026-03-08T06:00:00Z")) == instant("2026-03-08T07:00:00Z"))
    }

    @Test func anHourThatHappensTwiceIsOpenBothTimes() throws {
        // 01:15-01:45 on 2026-11-01 happens in EDT (05:15Z) and again in EST (06:15Z).
        let hours = try openingHours("sun 01:15-01:45")
        #expect(hours.isOpen(at: instant("2026-11-01T05:30:00Z")))
        #expect(!hours.isOpen(at: instant("2026-11-01T06:00:00Z")))
        #expect(hours.isOpen(at: instant("2026-11-01T06:30:00Z")))
        #expect(hours.nextOpening(after: instant("2026-11-01T04:00:00Z")) == instant("2026-11-01T05:15:00Z"))
        #expect(hours.nextOpening(after: instant("2026-11-01T05:50:00Z")) == instant("2026-11-01T06:15:00Z"))
    }

    @Test func aSpanMayWrapPastSunday() throws {
        let hours = try openingHours("sat-mon 10:00-14:00", zone: "UTC")
        // 2026-03-07 is a Saturday.
        for day in ["07", "08", "09"] { #expect(hours.isOpen(at: instant("2026-03-\(day)T11:00:00Z")), "\(day)") }
        for day in ["10", "11", "12", "13"] { #expect(!hours.isOpen(at: instant("2026-03-\(day)T11:00:00Z")), "\(day)") }
        #expect(hours.nextOpening(after: instant("2026-03-10T11:00:00Z")) == instant("2026-03-14T10:00:00Z"))
        #expect(hours.groups.first?.days == [.saturday, .sunday, .monday])
    }

    @Test func twentyFourHundredEndsTheDayAndTheNextDayOpensAtMidnight() throws {
        // 2026-03-09 is a Monday.
        let hours = try openingHours("mon 22:00-24:00, tue 00:00-06:00", zone: "UTC")
        #expect(!hours.isOpen(at: instant("2026-03-09T21:59:59Z")))
        #expect(hours.isOpen(at: instant("2026-03-09T23:59:59Z")))
        #expect(hours.isOpen(at: instant("2026-03-10T00:00:00Z")))
        #expect(!hours.isOpen(at: instant("2026-03-10T06:00:00Z")))
        #expect(hours.nextOpening(after: instant("2026-03-09T21:00:00Z")) == instant("2026-03-09T22:00:00Z"))
        #expect(hours.nextOpening(after: instant("2026-03-10T07:00:00Z")) == instant("2026-03-16T22:00:00Z"))
    }

    @Test func aDayMayHaveSeveralRanges() throws {
        let hours = try openingHours("mon-fri 08:00-12:00 13:00-18:00", zone: "Europe/Paris")
        // Paris is UTC+1 in early March 2026; 2026-03-13 is a Friday.
        #expect(hours.isOpen(at: instant("2026-03-09T10:59:59Z")))
        #expect(!hours.isOpen(at: instant("2026-03-09T11:00:00Z")))
        #expect(!hours.isOpen(at: instant("2026-03-09T11:30:00Z")))
        #expect(hours.isOpen(at: instant("2026-03-09T12:00:00Z")))
        #expect(hours.nextOpening(after: instant("2026-03-09T11:00:00Z")) == instant("2026-03-09T12:00:00Z"))
        #expect(hours.nextOpening(after: instant("2026-03-13T17:00:00Z")) == instant("2026-03-16T07:00:00Z"))
    }

    @Test func thereIsNoNextOpeningWhileOpenOrWhenItNeverOpens() throws {
        let hours = try openingHours("mon-fri 08:00-18:00", zone: "UTC")
        #expect(hours.nextOpening(after: instant("2026-03-09T09:00:00Z")) == nil)
        #expect(try openingHours("mon-sun 00:00-24:00").nextOpening(after: instant("2026-03-08T07:00:00Z")) == nil)
        let never = OpeningHours(groups: [], timeZone: TimeZone(identifier: "UTC")!)
        #expect(!never.isOpen(at: instant("2026-03-09T09:00:00Z")))
        #expect(never.nextOpening(after: instant("2026-03-09T09:00:00Z")) == nil)
    }

    @Test func theDescriptionGroupsDaysAsWrittenWithEnDashes() throws {
        #expect(try openingHours("mon-fri 08:00-18:00, sat 09:00-12:00").description == "Mon–Fri 08:00–18:00, Sat 09:00–12:00")
        #expect(try openingHours("MON-Fri 08:00-12:00 13:00-18:00,  Sun 22:00-24:00").description == "Mon–Fri 08:00–12:00 13:00–18:00, Sun 22:00–24:00")
        #expect(try openingHours("sat-mon 10:00-14:00, wed 09:00-10:00").description == "Sat–Mon 10:00–14:00, Wed 09:00–10:00")
        #expect(try openingHours("sat-mon 10:00-14:00, wed 09:00-10:00").configText == "sat-mon 10:00-14:00, wed 09:00-10:00")
        #expect(try openingHours("tue 09:00-10:00", zone: "America/Chicago").timeZoneIdentifier == "America/Chicago")
    }
}

@Suite("hours in pipeline.conf")
struct OpeningHoursConfigTests {
    static let org = """
        [org lotus]
        hipaa = off
        stage auth
        stage store
        stage fanout
        """

    func settings(_ extra: String) throws -> OrgSettings {
        try #require(try StageRegistry.standard.load(Self.org + "\n" + extra, file: "test.conf").orgs.first).settings
    }

    /// The issues of `hours = value` on line 6 with a valid time zone on line 7.
    func hoursIssues(_ value: String) -> [String] { configIssues(Self.org + "\nhours = \(value)\ntimezone = UTC") }

    func issues(_ extra: String) -> [String] { configIssues(Self.org + "\n" + extra) }

    @Test func withoutHoursAnOrganisationIsAlwaysOpen() throws {
        #expect(try settings("").hours == nil)
    }

    @Test func hoursAndTimeZoneAreRead() throws {
        let hours = try #require(try settings("hours    = mon-fri 08:00-18:00, sat 09:00-12:00\ntimezone = America/Chicago").hours)
        #expect(hours.timeZoneIdentifier == "America/Chicago")
        #expect(hours.groups == [
            OpeningHours.Group(first: .monday, last: .friday, ranges: [OpeningHours.TimeRange(start: 480, end: 1080)]),
            OpeningHours.Group(first: .saturday, last: .saturday, ranges: [OpeningHours.TimeRange(start: 540, end: 720)]),
        ])
        // The order of the two lines does not matter, and a comment may follow.
        #expect(try settings("timezone = Europe/Paris\nhours = sun 00:00-24:00   # all day").hours?.description == "Sun 00:00–24:00")
    }

    @Test func aRangeThatCrossesMidnightIsToldHowToSplit() {
        #expect(hoursIssues("mon 22:00-06:00") == [
            "test.conf:6: '22:00-06:00' crosses midnight; write it as two groups, e.g. 'mon 22:00-24:00, tue 00:00-06:00'",
        ])
        #expect(hoursIssues("fri-sun 22:00-06:00") == [
            "test.conf:6: '22:00-06:00' crosses midnight; write it as two groups, e.g. 'fri-sun 22:00-24:00, sat-mon 00:00-06:00'",
        ])
        #expect(hoursIssues("mon 22:00-00:00") == ["test.conf:6: '22:00-00:00' ends at midnight; write it as '22:00-24:00'"])
    }

    @Test func timesAreHHMMFromMidnightToTwentyFourHundred() {
        #expect(hoursIssues("mon 25:00-26:00") == ["test.conf:6: expected times from 00:00 to 24:00, found '25:00' in '25:00-26:00'"])
        #expect(hoursIssues("mon 08:00-24:30") == ["test.conf:6: expected times from 00:00 to 24:00, found '24:30' in '08:00-24:30'"])
        #expect(hoursIssues("mon 08:60-09:00") == ["test.conf:6: expected times from 00:00 to 24:00, found '08:60' in '08:60-09:00'"])
        #expect(hoursIssues("mon 24:00-24:00") == ["test.conf:6: '24:00-24:00' starts at 24:00, which ends a day; start it at 00:00 of the next day"])
        #expect(hoursIssues("mon 09:00-09:00") == ["test.conf:6: '09:00-09:00' is empty; a range ends after it starts"])
        for bad in ["8:00-9:00", "08:00", "08:00-", "08:00-12:00-13:00", "0８:00-09:00", "08.00-09.00", "08:00–09:00"] {
            #expect(hoursIssues("mon \(bad)") == ["test.conf:6: expected a time range HH:MM-HH:MM such as 08:00-18:00, found '\(bad)'"], "\(bad)")
        }
    }

    @Test func daysAreNamedOnceEach() {
        #expect(hoursIssues("mon-fri 08:00-12:00, mon 13:00-18:00") == [
            "test.conf:6: 'mon' is already in 'mon-fri' on this line; give a day all its ranges in one group, such as 'mon 08:00-12:00 13:00-18:00'",
        ])
        #expect(hoursIssues("sat-mon 10:00-12:00, Mon-Fri 08:00-12:00") == [
            "test.conf:6: 'mon' (in 'Mon-Fri') is already in 'sat-mon' on this line; give a day all its ranges in one group, such as 'mon 08:00-12:00 13:00-18:00'",
        ])
        #expect(hoursIssues("mon 08:00-12:00 11:00-13:00") == [
            "test.conf:6: '11:00-13:00' overlaps '08:00-12:00' in 'mon'; the ranges of a day may not share a minute",
        ])
        #expect(hoursIssues("mon 08:00-12:00 12:00-13:00").isEmpty)
        #expect(hoursIssues("monday 08:00-12:00") == [
            "test.conf:6: expected a day (mon, tue, wed, thu, fri, sat or sun) or a span such as mon-fri, found 'monday'",
        ])
        #expect(hoursIssues("mon-fri-sat 08:00-12:00").first?.hasSuffix("found 'mon-fri-sat'") == true)
        #expect(hoursIssues("08:00-18:00") == [
            "test.conf:6: expected a day (mon … sun) or a span such as mon-fri before '08:00-18:00'; each group starts with its days",
        ])
        #expect(hoursIssues("tue-tue 08:00-12:00") == [
            "test.conf:6: 'tue-tue' starts and ends on the same day; write 'tue' for that day or 'tue-mon' for the whole week",
        ])
        #expect(hoursIssues("mon 08:00-12:00, sat") == ["test.conf:6: expected one or more times such as 08:00-18:00 after 'sat'"])
        #expect(hoursIssues("mon 08:00-12:00,") == [
            "test.conf:6: expected hours to be groups of days and times such as 'mon-fri 08:00-18:00, sat 09:00-12:00', found an empty group between commas",
        ])
    }

    @Test func theTimeZoneIsAnIANAName() {
        for bad in ["Mars/Olympus", "America/New York", "../../etc/passwd", "/etc/localtime", "Europe/Paris\u{301}", String(repeating: "A", count: 65)] {
            #expect(issues("hours = mon 08:00-12:00\ntimezone = \(bad)") == [
                "test.conf:7: unknown time zone '\(bad)'; expected an IANA name such as Europe/Paris or America/Chicago",
            ], "\(bad)")
        }
    }

    @Test func eachNeedsTheOtherAndIsSetOnce() {
        #expect(issues("hours = mon 08:00-12:00") == [
            "test.conf:6: 'hours' needs 'timezone = …' in [org lotus] to say whose clock they follow, such as 'timezone = America/Chicago'",
        ])
        #expect(issues("timezone = America/Chicago") == [
            "test.conf:6: 'timezone' is set but [org lotus] has no 'hours'; add 'hours = …' (such as 'hours = mon-fri 08:00-18:00') or remove 'timezone'",
        ])
        // A line that is there but wrong is reported once, not again as missing.
        #expect(issues("hours = mon 08:00-12:00\ntimezone = Nowhere").count == 1)
        #expect(issues("hours = mon 08:00\ntimezone = UTC").count == 1)
        #expect(issues("hours = mon 08:00-12:00\ntimezone = UTC\nhours = tue 08:00-12:00") == ["test.conf:8: 'hours' is already set on line 6"])
        #expect(issues("hours = mon 08:00-12:00\ntimezone = UTC\ntimezone = UTC") == ["test.conf:8: 'timezone' is already set on line 7"])
        #expect(issues("hours =") == ["test.conf:6: expected a value after 'hours ='"])
    }

    @Test func summariesShowTheHoursAndTimeZone() throws {
        let config = try StageRegistry.standard.load(Self.org + "\nhours = Mon-Fri 08:00-18:00, sat 09:00-12:00\ntimezone = America/Chicago", file: "test.conf")
        let lines = try #require(config.orgs.first).summaryLines
        #expect(lines.contains("hours=mon-fri 08:00-18:00, sat 09:00-12:00"))
        #expect(lines.contains("timezone=America/Chicago"))
        #expect(config.summaryText().contains("  hours=mon-fri 08:00-18:00, sat 09:00-12:00\n  timezone=America/Chicago"))
        let object = try JSONSerialization.jsonObject(with: Data(config.summaryJSON().utf8)) as? [String: Any]
        let org = try #require((object?["orgs"] as? [[String: Any]])?.first)
        #expect(org["hours"] as? String == "Mon–Fri 08:00–18:00, Sat 09:00–12:00")
        #expect(org["timeZone"] as? String == "America/Chicago")

        let plain = try StageRegistry.standard.load(Self.org, file: "test.conf")
        #expect(try #require(plain.orgs.first).summaryLines.allSatisfy { !$0.hasPrefix("hours") && !$0.hasPrefix("timezone") })
        let plainObject = try JSONSerialization.jsonObject(with: Data(plain.summaryJSON().utf8)) as? [String: Any]
        let plainOrg = try #require((plainObject?["orgs"] as? [[String: Any]])?.first)
        #expect(plainOrg["hours"] is NSNull && plainOrg["timeZone"] is NSNull)
    }
}
