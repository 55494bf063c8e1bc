import CareHubCore
import CareHubStages
import Foundation
import Testing

/// Every number in pipeline.conf is range checked before any arithmetic, and the file's bytes are
/// checked for UTF-8 and control characters line by line.
@Suite("pipeline.conf bounds")
struct ConfigBoundsTests {
    static let org = """
        [org lotus]
        hipaa = off
        stage auth
        stage idle timeout=60m
        stage store
        stage purge
        stage fanout
        """

    func issues(_ text: String) -> [String] { configIssues(text) }

    func with(_ old: String, _ new: String) -> String {
        Self.org.replacingOccurrences(of: old, with: new)
    }

    @Test func aDurationTooLargeForInt64SecondsIsAnIssueNotATrap() {
        #expect(issues(with("timeout=60m", "timeout=106751991167301d")) == [
            "test.conf:4: expected timeout to be a duration from 1s to 30d (a whole number followed by s, m, h or d), found timeout=106751991167301d",
        ])
    }

    @Test func durationsOverflowingInEveryUnitAreRefused() {
        for value in ["9223372036854775807s", "9223372036854775808s", "153722867280912931m", "2562047788015216h",
                      "99999999999999999999999999d", "3651d", "-5m", "+5m", "0s", "1e3s", "m", "5", "٣m"] {
            let found = issues(with("stage purge", "stage purge retain=\(value)"))
            #expect(found.count == 1, "\(value)")
            #expect(found.first?.hasPrefix("test.conf:6: expected retain to be a duration from 1s to 3650d") == true, "\(value)")
        }
        #expect(issues(with("stage purge", "stage purge retain=3650d")) == [])
        #expect(ConfigValue.duration("3650d") == .seconds(3650 * 86_400))
        #expect(ConfigValue.duration("3651d") == nil)
        #expect(ConfigValue.duration("106751991167301d") == nil)
    }

    @Test func eachDurationHasItsOwnRange() {
        #expect(issues(with("stage auth", "stage auth lockout_time=30s")) == [
            "test.conf:3: expected lockout_time to be a duration from 1m to 30d (a whole number followed by s, m, h or d), found lockout_time=30s",
        ])
        #expect(issues(with("stage auth", "stage auth visitor_idle=31d")).first?.contains("from 1m to 30d") == true)
        #expect(issues(with("timeout=60m", "timeout=60m lifetime=31d")).first?.contains("expected lifetime to be a duration from 1s to 30d") == true)
        #expect(issues(with("stage purge", "stage purge abandon=366d")).first?.contains("expected abandon to be a duration from 1s to 365d") == true)
        #expect(issues(with("stage purge", "stage purge abandon=365d retain=3650d")) == [])
    }

    @Test func integersAreDigitsWithinTheirRange() {
        for value in ["99999999999999999999", "9223372036854775808", "+200", "0x10", "1e3", "２00", ""] {
            let found = issues(with("stage store", "stage store history=\(value)"))
            #expect(found == ["test.conf:5: expected history to be a whole number from 0 to 10000, found history=\(value)"], "\(value)")
        }
        #expect(issues(with("stage fanout", "stage fanout preview_chars=-9223372036854775808")).count == 1)
        #expect(issues(with("stage auth", "stage auth lockout=21")) == ["test.conf:3: expected lockout to be a whole number from 3 to 20, found lockout=21"])
    }

    @Test func aPortOrPrefixTooLargeIsRefused() {
        #expect(issues(with("stage auth", "stage auth allow=10.0.0.0/99999999999999999999")).count == 1)
        #expect(issues(Self.org + "\nintegration x type=webhook url=https://h.example:99999999999999999999/p baa=no").count == 1)
    }

    @Test func invalidUTF8IsReportedOnItsLine() throws {
        var bytes = Array(Self.org.utf8)
        let line5 = try #require(bytes.indices.filter { bytes[$0] == 0x0A }.dropFirst(3).first)
        bytes.insert(contentsOf: [0x73, 0xC3, 0x28], at: line5 + 1)  // "s" then a broken two-byte sequence
        #expect(throws: ConfigError([ConfigIssue(file: "f.conf", line: 5, message: "invalid UTF-8 at byte 2 of the line; save the file as UTF-8")])) {
            try StageRegistry.standard.load(bytes: bytes, file: "f.conf")
        }
        let twoLines = Array("[org a]\n\u{FF}\nhipaa = off\n\u{80}".utf8.map { $0 == 0xC3 || $0 == 0xC2 ? 0x20 : $0 })
        do {
            _ = try StageRegistry.standard.load(bytes: twoLines + [0xFE], file: "f.conf")
            Issue.record("loaded")
        } catch let error as ConfigError {
            #expect(error.issues.map(\.line) == [2, 4])
        }
        #expect(try StageRegistry.standard.load(bytes: Array(Self.org.utf8), file: "f.conf").orgs.count == 1)
    }

    @Test func controlCharactersInALineAreRefused() {
        #expect(issues("[org a]\nname = Evil\u{1B}[2J Clinic\nhipaa = off\nstage auth\nstage store\nstage fanout") == [
            "test.conf:2: control character U+001B is not allowed; pipeline.conf is plain text",
        ])
        #expect(issues("[org a]\nname = A\u{202E}B\nhipaa = off\nstage auth\nstage store\nstage fanout").first?.contains("U+202E") == true)
        #expect(issues("[org a]\nname = A\tB\nhipaa = off\nstage auth\nstage store\nstage fanout") == [])
    }
}

@Suite("org limits and widget origins")
struct OrgLimitsConfigTests {
    static let org = """
        [org lotus]
        hipaa = off
        stage auth
        stage store
        stage fanout
        """

    static let hipaa = """
        [org clinic]
        hipaa = on
        stage auth
        stage idle
        stage encrypt
        stage store
        stage fanout
        """

    func settings(_ extra: String, base: String = org) throws -> OrgSettings {
        try #require(try StageRegistry.standard.load(base + "\n" + extra, file: "test.conf").orgs.first).settings
    }

    func issues(_ extra: String, base: String = org) -> [String] { configIssues(base + "\n" + extra) }

    @Test func limitsDefaultAndEachKeyIsOptional() throws {
        #expect(try settings("").limits == .standard)
        let limits = try settings("limits messages_per_second=8 message_burst=40").limits
        #expect(limits == OrgLimits(conversationsPerMinute: 120, conversationsPerAddressPerMinute: 10, messagesPerSecond: 8, messageBurst: 40))
        let all = try settings("limits conversations_per_minute=600 conversations_per_address_per_minute=30 messages_per_second=5 message_burst=5").limits
        #expect(all == OrgLimits(conversationsPerMinute: 600, conversationsPerAddressPerMinute: 30, messagesPerSecond: 5, messageBurst: 5))
    }

    @Test func limitsAreCheckedWithTheirLine() {
        #expect(issues("limits conversations_per_minute=0") == [
            "test.conf:6: expected conversations_per_minute to be a whole number from 1 to 100000, found conversations_per_minute=0",
        ])
        #expect(issues("limits messages_per_second=99999999999999999999999").first?.contains("from 1 to 100000") == true)
        #expect(issues("limits messages_per_second=100001").count == 1)
        #expect(issues("limits messages_per_second=30") == ["test.conf:6: expected message_burst (20) to be at least messages_per_second (30)"])
        #expect(issues("limits rate=5").first?.hasPrefix("test.conf:6: unknown limit 'rate'; expected one of conversations_per_minute") == true)
        #expect(issues("limits message_burst=5 message_burst=6") == ["test.conf:6: limit 'message_burst' is given twice"])
        #expect(issues("limits").first?.hasPrefix("test.conf:6: expected key=value after 'limits'") == true)
        #expect(issues("limits message_burst") == ["test.conf:6: expected key=value after 'limits', found 'message_burst'"])
        #expect(issues("limits message_burst=30\nlimits message_burst=40") == ["test.conf:7: 'limits' is already set on line 6"])
    }

    @Test func widgetOriginsAreNormalisedOrigins() throws {
        #expect(try settings("").widgetOrigins == [])
        #expect(try settings("widget_origins = https://www.Riverside.example, https://riverside.example:443 , http://localhost:8080").widgetOrigins
            == ["https://www.riverside.example", "https://riverside.example", "http://localhost:8080"])
        #expect(try settings("widget_origins = https://[2001:db8::1]:8443").widgetOrigins == ["https://[2001:db8::1]:8443"])
    }

    @Test func widgetOriginsAreCheckedWithTheirLine() {
        for bad in ["https://clinic.example/", "https://clinic.example/widget", "ftp://clinic.example", "clinic.example",
                    "https://user@clinic.example", "https://clinic.example:0", "https://clinic.example:99999999999999999999",
                    "https://", "https://-bad.example", "https://a..example", "https://clinic.example?x=1", "https://[::1"] {
            let found = issues("widget_origins = \(bad)")
            #expect(found.count == 1, "\(bad)")
            #expect(found.first?.hasPrefix("test.conf:6: expected widget_origins to be origins such as") == true, "\(bad)")
        }
        #expect(issues("widget_origins = https://a.example,") .first?.hasSuffix("found ''") == true)
        #expect(issues("widget_origins = https://a.example, https://A.example:443") == ["test.conf:6: widget_origins lists https://a.example twice"])
        #expect(issues("widget_origins = https://a.example\nwidget_origins = https://b.example") == ["test.conf:7: 'widget_origins' is already set on line 6"])
    }

    @Test func aHIPAAOrganisationEmbedsOnlyInHTTPSPagesOrLocalhost() throws {
        #expect(issues("widget_origins = https://a.example, http://a.example", base: Self.hipaa) == [
            "test.conf:8: HIPAA organisation may embed its widget only in https:// pages (or http://localhost); found http://a.example in widget_origins",
        ])
        #expect(try settings("widget_origins = https://a.example, http://localhost:8080, http://127.0.0.1", base: Self.hipaa).widgetOrigins.count == 3)
    }

    @Test func summariesAndJSONShowTheSettings() throws {
        let config = try StageRegistry.standard.load(Self.org + "\nwidget_origins = https://a.example\nlimits message_burst=30", file: "test.conf")
        let lines = try #require(config.orgs.first).summaryLines
        #expect(lines.contains("widget_origins=https://a.example"))
        #expect(lines.contains("limits conversations_per_minute=120 conversations_per_address_per_minute=10 messages_per_second=5 message_burst=30"))
        let plain = try StageRegistry.standard.load(Self.org, file: "test.conf")
        #expect(try #require(plain.orgs.first).summaryLines.allSatisfy { !$0.hasPrefix("limits") && !$0.hasPrefix("widget_origins") })

        let object = try JSONSerialization.jsonObject(with: Data(config.summaryJSON().utf8)) as? [String: Any]
        let org = try #require((object?["orgs"] as? [[String: Any]])?.first)
        #expect(org["widgetOrigins"] as? [String] == ["https://a.example"])
        let limits = try #require(org["limits"] as? [String: Any])
        #expect(limits["messageBurst"] as? Int == 30)
        #expect(limits["conversationsPerMinute"] as? Int == 120)
        #expect(org["staffAccess"] as? String == "all")
    }
}
