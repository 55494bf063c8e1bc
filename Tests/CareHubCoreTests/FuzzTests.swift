import CareHubCore
import CareHubStages
import Foundation
import Testing

/// SplitMix64: a small, seeded, deterministic generator, so a failing input is found again by
/// running the same test.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int.random(in: 0..<bound, using: &self) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) } }
}

/// Generated inputs for the two parsers that read what others write: pipeline.conf (operators,
/// admins in the console) and client frames (anyone on the network). Each must give a value or a
/// precise error, never trap. Bounded by count, not time.
@Suite("fuzzing")
struct FuzzTests {
    static let shipped: String = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../pipeline.conf")
        return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }()

    static let shippedLines = shipped.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)

    static let numbers = [
        "0", "1", "-1", "15", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "106751991167301",
        "18446744073709551616", "99999999999999999999999999999999", "1e309", "0x7fffffffffffffff", "+3", "007", "", "3650", "3651",
        "100000", "100001", "2147483648", "٣", "１",
    ]
    static let units = ["s", "m", "h", "d", "", "ms", "w", "D"]
    static let keys = [
        "timeout", "lifetime", "lockout", "lockout_time", "visitor_idle", "history", "retain", "abandon", "preview_chars",
        "notify", "via", "allow", "twofactor", "visitors", "cipher", "on", "export_dir", "export_key", "export_to",
        "transcript_email", "type", "url", "baa", "to", "from", "command", "ca", "conversations_per_minute",
        "conversations_per_address_per_minute", "messages_per_second", "message_burst", "hours", "timezone", "x", "",
    ]
    static let oddText = [
        "\u{1B}[2K", "\u{9B}", "\u{202E}", "\u{0}", "\t", "\r", "\r\n", "\"", "#", "=", "[", "]", ",", "é", "👩🏽‍⚕️", "\u{FFFD}",
        "\u{10FFFF}", "\u{E000}", " ", "[org a]", "hipaa = on", "stage", "integration", "limits", "widget_origins = ",
        "https://a.example", "http://[::1]:0", "10.0.0.0/", "::ffff:1.2.3.4/129", "hours = ", "timezone = ", "24:00", "-",
    ]
    static let dayWords = ["mon", "sun", "Sat", "mon-fri", "sat-mon", "fri-tue", "mon-mon", "MON-SUN", "monday", "mon-", "-fri", "x", ""]
    static let clockWords = ["00:00", "08:00", "12:30", "23:59", "24:00", "24:01", "25:00", "08:60", "8:00", "99:99", "", "٠٨:٠٠", "１２:00"]
    static let zoneNames = [
        "America/Chicago", "America/New_York", "Europe/Paris", "UTC", "GMT", "Etc/GMT+14", "GMT+25:00", "America/New York", "../etc/passwd",
        "/etc/localtime", "Mars/Olympus", "", "Australia/Lord_Howe", "Asia/Kathmandu", "🕒", String(repeating: "A/", count: 40),
    ]

    /// A value for `hours =`: groups of days and ranges, well formed or not.
    static func hoursValue(_ random: inout SeededGenerator) -> String {
        (0..<(1 + random.below(4))).map { _ in
            let ranges = (0..<random.below(4)).map { _ in "\(random.pick(clockWords))-\(random.pick(clockWords))" }
            return ([random.pick(dayWords)] + ranges).joined(separator: random.chance(90) ? " " : "  ")
        }.joined(separator: random.pick([", ", ",", " , ", ",,"]))
    }

    // MARK: pipeline.conf

    /// A value for a key: mostly numbers and durations, sometimes anything.
    static func value(_ random: inout SeededGenerator) -> String {
        switch random.below(6) {
        case 0, 1: return random.pick(numbers) + random.pick(units)
        case 2: return random.pick(numbers)
        case 3: return random.pick(oddText)
        case 4: return String(random.below(Int(Int32.max)) * (random.chance(50) ? 1 : 1_000_000_000)) + random.pick(units)
        default: return randomUTF8(&random, count: random.below(12))
        }
    }

    static let scalarRanges: [ClosedRange<UInt32>] = [0...0x7F, 0x80...0x7FF, 0x800...0xD7FF, 0xE000...0xFFFF, 0x10000...0x10FFFF, 0...0x20, 0x2060...0x206F]

    static func randomUTF8(_ random: inout SeededGenerator, count: Int) -> String {
        var scalars = String.UnicodeScalarView()
        for _ in 0..<count {
            let range = random.pick(scalarRanges)
            if let scalar = Unicode.Scalar(UInt32.random(in: range, using: &random)) { scalars.append(scalar) }
        }
        return String(scalars)
    }

    /// The shipped file with random edits of its lines.
    static func mutatedConfig(_ random: inout SeededGenerator) -> [UInt8] {
        var lines = shippedLines
        for _ in 0..<(1 + random.below(4)) {
            guard !lines.isEmpty else { break }
            let index = random.below(lines.count)
            switch random.below(10) {
            case 0: lines.remove(at: index)
            case 1: lines.insert(lines[index], at: random.below(lines.count + 1))
            case 2: lines[index] += " \(random.pick(keys))=\(value(&random))"
            case 3:
                // Every number on the line replaced.
                var out = ""
                var inNumber = false
                for character in lines[index] {
                    if character.isASCII && character.isNumber {
                        if !inNumber { out += random.pick(numbers) }
                        inNumber = true
                    } else {
                        out.append(character)
                        inNumber = false
                    }
                }
                lines[index] = out
            case 4:
                var words = lines[index].split(separator: " ").map(String.init)
                if !words.isEmpty { words[random.below(words.count)] = "\(random.pick(keys))=\(value(&random))" }
                lines[index] = words.joined(separator: " ")
            case 5:
                let text = lines[index]
                let cut = text.isEmpty ? 0 : random.below(text.count)
                lines[index] = String(text.prefix(cut)) + random.pick(oddText) + String(text.dropFirst(cut))
            case 6:
                lines.insert(random.pick([
                    "limits \(random.pick(keys))=\(value(&random)) \(random.pick(keys))=\(value(&random))",
                    "widget_origins = \(random.pick(oddText)), https://\(randomUTF8(&random, count: 4)).example:\(random.pick(numbers))",
                    "stage \(random.pick(["auth", "idle", "encrypt", "store", "purge", "fanout", "nope"])) \(random.pick(keys))=\(value(&random))",
                    "integration \(randomUTF8(&random, count: 3)) type=\(random.pick(["webhook", "email"])) url=https://h:\(random.pick(numbers))/ baa=yes",
                    "\(random.pick(keys)) = \(value(&random))",
                    "hours = \(hoursValue(&random))",
                    "timezone = \(random.pick(zoneNames))",
                    "hours = \(hoursValue(&random))\ntimezone = \(random.pick(zoneNames))",
                ]), at: random.below(lines.count + 1))
            case 7: lines.swapAt(index, random.below(lines.count))
            case 8: lines[index] = String(lines[index].prefix(random.below(lines[index].count + 1)))
            default: lines[index] = randomUTF8(&random, count: random.below(30))
            }
        }
        var bytes = Array(lines.joined(separator: random.chance(90) ? "\n" : "\r\n").utf8)
        if random.chance(15), !bytes.isEmpty {
            // Invalid UTF-8: a stray continuation byte, a cut sequence, an overlong form, a surrogate.
            let bad = random.pick([[0x80], [0xC3], [0xE2, 0x82], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xFF], [0xF4, 0x90, 0x80, 0x80]] as [[UInt8]])
            bytes.insert(contentsOf: bad, at: random.below(bytes.count))
        }
        return bytes
    }

    /// Loads the bytes the way `carehub config check` does; what is wrong with the answer, or nil.
    /// (Plain checks, one `#expect` per test: an expectation per input would cost more than the parse.)
    static func configProblem(_ bytes: [UInt8]) -> String? {
        let lineCount = bytes.count { $0 == 0x0A } + 1
        do {
            let config = try StageRegistry.standard.load(bytes: bytes, file: "fuzz.conf")
            if config.orgs.isEmpty { return "a config without organisations" }
            if (try? JSONSerialization.jsonObject(with: Data(config.summaryJSON().utf8))) == nil { return "summary JSON does not parse" }
            _ = config.summaryText()
        } catch let error as ConfigError {
            if error.issues.isEmpty { return "an error without issues" }
            for issue in error.issues {
                if issue.file != "fuzz.conf" || !(1...lineCount).contains(issue.line) || issue.message.isEmpty
                    || TypedText.hasControlCharacters(issue.message) {
                    return "malformed issue \(issue.description.debugDescription)"
                }
            }
        } catch {
            return "unexpected error \(error)"
        }
        return nil
    }

    /// Runs `count` generated inputs through `check` and expects no problem; reports the first few.
    static func run<Input>(_ count: Int, _ generate: () -> Input, _ check: (Input) -> String?) {
        var problems: [String] = []
        for _ in 0..<count {
            let input = generate()
            if let problem = check(input) { problems.append(problem) }
        }
        #expect(problems.isEmpty, "\(problems.count) problems, first: \(problems.prefix(3))")
    }

    @Test func randomBytesGiveAConfigOrLineNumberedIssues() {
        var random = SeededGenerator(seed: 0xC0FF_EE01)
        Self.run(5_000, {
            var bytes = random.bytes(random.below(160))
            if random.chance(50) {
                // Mostly printable, so the parser gets past the first line now and then.
                bytes = bytes.map { $0 % 3 == 0 ? $0 : 0x20 + $0 % 0x5F }
            }
            return random.chance(30) ? Array("[org a]\nhipaa = off\n".utf8) + bytes : bytes
        }, Self.configProblem)
    }

    @Test func mutatedShippedFilesGiveAConfigOrLineNumberedIssues() {
        #expect(!Self.shipped.isEmpty)
        var random = SeededGenerator(seed: 0x5EED_0002)
        Self.run(10_000, { Self.mutatedConfig(&random) }, Self.configProblem)
    }

    @Test func generatedHoursGiveHoursOrLineNumberedIssues() {
        var random = SeededGenerator(seed: 0x0408_2400)
        Self.run(5_000, {
            var extra = ["hours = \(Self.hoursValue(&random))", "timezone = \(random.pick(Self.zoneNames))"]
            if random.chance(20) { extra.remove(at: random.below(extra.count)) }
            if random.chance(10) { extra.append(random.pick(extra)) }
            if random.chance(50) { extra.reverse() }
            return Array(("[org a]\nhipaa = off\nstage auth\nstage store\nstage fanout\n" + extra.joined(separator: "\n")).utf8)
        }, Self.configProblem)
    }

    /// Any groups, overlapping or empty ones included, in any zone: never a trap, and a next
    /// opening is the first moment after the date at which it is open, never while open, and
    /// hours with a range always have one when closed.
    @Test func openingHoursAnswerForAnyGroupsAndDates() {
        var random = SeededGenerator(seed: 0x0FE0_1100)
        let zones = ["America/New_York", "Europe/Paris", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Apia", "UTC", "America/Santiago"]
            .compactMap(TimeZone.init(identifier:))
        Self.run(1_500, {
            let groups = (0..<random.below(4)).map { _ in
                OpeningHours.Group(
                    first: random.pick(OpeningHours.Weekday.allCases), last: random.pick(OpeningHours.Weekday.allCases),
                    ranges: (0..<random.below(3)).map { _ in OpeningHours.TimeRange(start: random.below(1_441), end: random.below(1_441)) })
            }
            // 2020 to 2030, to the second.
            let date = Date(timeIntervalSince1970: 1_577_836_800 + Double(random.below(315_576_000)))
            return (OpeningHours(groups: groups, timeZone: random.pick(zones)), date)
        }, { hours, date in
            _ = hours.description
            let open = hours.isOpen(at: date)
            let opens = hours.groups.contains { $0.ranges.contains { $0.start < $0.end } }
            guard let next = hours.nextOpening(after: date) else {
                return !open && opens ? "no next opening of \(hours) after \(date)" : nil
            }
            if open { return "a next opening while open: \(hours) at \(date)" }
            if next <= date || !hours.isOpen(at: next) { return "next opening \(next) of \(hours) after \(date) is not an opening" }
            if next.timeIntervalSince(date) > 8 * 86_400 { return "next opening \(next) of \(hours) after \(date) is over a week away" }
            if hours.isOpen(at: next.addingTimeInterval(-1)) { return "\(hours) already open a second before \(next)" }
            return nil
        })
    }

    // MARK: frames

    static let frameTypes = ["hello", "login", "rooms", "subscribe", "unsubscribe", "send", "end", "typing", "logout", "transcript", "assign", "admin"]
    static let adminOps = [
        "pipeline.get", "pipeline.check", "pipeline.replace", "hipaa.enable", "hipaa.disable", "users.list", "users.add",
        "users.disable", "users.enable", "users.set_role", "users.reset_2fa", "users.unlock", "audit.list", "audit.verify", "nope",
    ]
    static let fieldNames = [
        "type", "id", "org", "token", "profile", "user", "password", "totp", "room", "text", "to", "op", "base", "baaSignedOn",
        "privacyOfficer", "privacyOfficerEmail", "purge", "role", "limit", "before", "name", "email", "phone", "reason", "ssn",
    ]
    static let jsonNumbers = [
        "0", "-0", "1", "-1", "1.5", "1e2", "1E-2", "500", "501", "9223372036854775807", "9223372036854775808",
        "-9223372036854775809", "18446744073709551616", "1e308", "1e309", "-1e309", "123456789012345678901234567890",
        "0.000000000000000000000001", "4.9e-324", "2.5e-324",
    ]

    /// A JSON string literal of random content, escapes included.
    static func jsonString(_ random: inout SeededGenerator) -> String {
        var out = "\""
        for _ in 0..<random.below(12) {
            switch random.below(8) {
            case 0: out += random.pick(["\\n", "\\r", "\\t", "\\u001b", "\\u009b", "\\u202e", "\\u0000", "\\ud83d\\ude00", "\\ud800", "\\udc00", "\\\"", "\\\\", "\\/", "\\x"])
            case 1: out += random.pick(oddText).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            case 2: out += String(repeating: "a", count: random.pick([64, 65, 200, 1025, 16_384, 16_385]))
            default:
                let text = randomUTF8(&random, count: random.below(6))
                out += text.unicodeScalars.map { $0.value < 0x20 || $0 == "\"" || $0 == "\\" ? "\\u00" + String($0.value >> 4, radix: 16) + String($0.value & 0xF, radix: 16) : String($0) }.joined()
            }
        }
        return out + "\""
    }

    /// Random JSON of a random shape, nested up to `depth`.
    static func json(_ random: inout SeededGenerator, depth: Int) -> String {
        switch depth <= 0 ? random.below(4) : random.below(7) {
        case 0: return random.pick(jsonNumbers)
        case 1: return random.pick(["true", "false", "null"])
        case 2, 3: return jsonString(&random)
        case 4: return "[" + (0..<random.below(4)).map { _ in json(&random, depth: depth - 1) }.joined(separator: ",") + "]"
        default:
            return "{" + (0..<random.below(5)).map { _ in
                "\"\(random.pick(fieldNames))\":\(json(&random, depth: depth - 1))"
            }.joined(separator: ",") + "}"
        }
    }

    /// A valid frame of every type, as clients send them.
    static func validFrame(_ random: inout SeededGenerator) -> [String: String] {
        let type = random.pick(frameTypes)
        var fields = ["type": "\"\(type)\"", "id": "\"m\(random.below(1000))\""]
        switch type {
        case "hello":
            fields["org"] = "\"clinic\""
            if random.chance(50) { fields["profile"] = #"{"name":"Ada","email":"a@b.example","phone":"555","reason":"rash"}"# }
            if random.chance(30) { fields["token"] = "\"t0k3n\"" }
        case "login":
            fields["org"] = "\"clinic\""
            fields["user"] = "\"nurse.kim\""
            fields["password"] = "\"correct horse battery\""
            fields["totp"] = "\"123 456\""
        case "subscribe", "unsubscribe", "end", "typing": fields["room"] = "\"c_1\""
        case "send":
            fields["room"] = "\"c_1\""
            fields["text"] = "\"hello \\u001b[2K there\\r\\n\""
        case "transcript":
            fields["room"] = "\"c_1\""
            fields["to"] = "\"ada@example.org\""
        case "assign":
            fields["room"] = "\"c_1\""
            fields["user"] = "\"nurse.kim\""
        case "admin":
            let op = random.pick(adminOps)
            fields["op"] = "\"\(op)\""
            fields["text"] = "\"[org clinic]\\nhipaa = off\\nstage idle timeout=106751991167301d\""
            fields["base"] = "\"abc\""
            fields["baaSignedOn"] = "\"2026-01-01\""
            fields["privacyOfficer"] = "\"Pat Lee\""
            fields["privacyOfficerEmail"] = "\"p@c.example\""
            fields["purge"] = random.pick(["true", "false"])
            fields["user"] = "\"nurse.kim\""
            fields["role"] = "\"staff\""
            fields["password"] = "\"correct horse battery\""
            fields["limit"] = random.pick(jsonNumbers)
            fields["before"] = random.pick(jsonNumbers)
        default: break
        }
        return fields
    }

    static func mutatedFrame(_ random: inout SeededGenerator) -> [UInt8] {
        var fields = validFrame(&random)
        for _ in 0..<random.below(4) {
            let key = random.chance(80) && !fields.isEmpty ? random.pick(Array(fields.keys).sorted()) : random.pick(fieldNames)
            switch random.below(5) {
            case 0: fields[key] = nil
            case 1: fields[key] = random.pick(jsonNumbers)
            case 2: fields[key] = json(&random, depth: 3)
            default: fields[key] = jsonString(&random)
            }
        }
        var text = "{" + fields.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
        if random.chance(5) { text = text.replacingOccurrences(of: "\"id\"", with: "\"type\"") }  // a repeated key
        var bytes = Array(text.utf8)
        switch random.below(12) {
        case 0: bytes = Array(bytes.prefix(random.below(bytes.count + 1)))
        case 1: bytes.insert(random.pick([0x80, 0xC3, 0xFF, 0xED, 0xC0]), at: random.below(bytes.count))
        case 2: if !bytes.isEmpty { bytes[random.below(bytes.count)] = UInt8.random(in: 0...255, using: &random) }
        default: break
        }
        return bytes
    }

    /// A frame decodes to a value whose typed fields are clean, or a failure with a short message
    /// that echoes no control character; what is wrong, or nil.
    static func frameProblem(_ bytes: [UInt8]) -> String? {
        switch Envelope.decode(bytes) {
        case .success(let envelope):
            if let id = envelope.id, TypedText.hasControlCharacters(id) { return "id with control characters" }
            switch envelope.frame {
            case .send(let room, let text):
                if TypedText.needsCleaning(text, as: .multiLine) { return "send text not clean" }
                if TypedText.hasControlCharacters(room.rawValue) { return "room with control characters" }
                if text.isEmpty || text.utf8.count > Envelope.maxTextBytes { return "send text of \(text.utf8.count) bytes" }
            case .hello(_, _, let profile?, _):
                for (key, value) in profile.fields
                where TypedText.needsCleaning(value, as: VisitorProfile.multiLineFields.contains(key) ? .multiLine : .singleLine) {
                    return "profile field \(key) not clean"
                }
            case .login(_, let user, _, _), .assign(_, let user):
                if TypedText.hasControlCharacters(user) { return "user with control characters" }
            default: break
            }
        case .failure(let failure):
            let message = failure.error.message
            if message.isEmpty || message.utf8.count >= 600 || TypedText.hasControlCharacters(message) {
                return "malformed message \(message.prefix(100).debugDescription)"
            }
        }
        return nil
    }

    @Test func randomJSONOfRandomShapesDecodesOrFailsPrecisely() {
        var random = SeededGenerator(seed: 0xF4A3_0003)
        Self.run(10_000, { Array(Self.json(&random, depth: 4).utf8) }, Self.frameProblem)
    }

    @Test func mutatedFramesOfEveryTypeDecodeOrFailPrecisely() {
        var random = SeededGenerator(seed: 0xF4A3_0004)
        Self.run(15_000, { Self.mutatedFrame(&random) }, Self.frameProblem)
    }

    @Test func deepNestingRandomBytesAndLongStringsDoNotTrap() {
        var random = SeededGenerator(seed: 0xF4A3_0005)
        var frames: [[UInt8]] = []
        for depth in [10, 100, 511, 512, 513, 1_000, 20_000] {
            let open = String(repeating: random.pick(["[", "{\"profile\":"]), count: depth)
            frames.append(Array(("{\"type\":\"hello\",\"org\":\"clinic\",\"profile\":" + open + "1" + String(repeating: "]", count: depth) + "}").utf8))
            frames.append(Array((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8))
        }
        for size in [16_384, 16_385, 65_536, 1_000_000] {
            frames.append(Array("{\"type\":\"send\",\"room\":\"c_1\",\"text\":\"\(String(repeating: "\\u001b", count: size / 6))\"}".utf8))
            frames.append(Array("{\"type\":\"send\",\"room\":\"c_1\",\"text\":\"\(String(repeating: "é", count: size / 2))\"}".utf8))
        }
        #expect(frames.compactMap(Self.frameProblem).isEmpty)
        Self.run(5_000, { random.bytes(random.below(64)) }, Self.frameProblem)
    }
}
