import Foundation

/// Reads the text of pipeline.conf into sections and statements, checking only its syntax.
///
/// The format, line by line (see docs/CONFIGURATION.md):
///
/// ```
/// # comment
/// [org riverside-clinic]
/// name  = Riverside Family Clinic
/// hipaa = on
/// staff_access = assigned
/// widget_origins = https://www.riverside.example, https://riverside.example
/// hours    = mon-fri 08:00-18:00, sat 09:00-12:00
/// timezone = America/Chicago
/// limits conversations_per_minute=120 messages_per_second=5 message_burst=20
/// attachments max_size=10MB types=image/jpeg,image/png,application/pdf
/// stage idle  timeout=15m lifetime=12h
/// integration pager type=webhook url=https://hooks.example.org/x baa=yes
/// ```
///
/// Stage names and parameters are checked afterwards by ``StageRegistry``.
public struct PipelineConfigParser: Sendable {
    /// One `[org …]` section as written.
    public struct Section: Sendable {
        /// The organisation id.
        public let id: OrgID
        /// The line of the section header.
        public let line: Int
        /// `name = …`, with its line.
        public var name: (value: String, line: Int)?
        /// `hipaa = …`, with its line.
        public var hipaa: (value: Bool, line: Int)?
        /// `staff_access = …`, with its line.
        public var staffAccess: (value: OrgSettings.StaffAccess, line: Int)?
        /// `widget_origins = …`, normalised (see ``ConfigValue/origin(_:)``), with its line.
        public var widgetOrigins: (value: [String], line: Int)?
        /// The `limits …` line, with its line.
        public var limits: (value: OrgLimits, line: Int)?
        /// The `attachments …` line, with its line.
        public var attachments: (value: OrgAttachments, line: Int)?
        /// `hours = …`, its groups as written, with its line.
        public var hours: (value: [OpeningHours.Group], line: Int)?
        /// `timezone = …`, with its line.
        public var timeZone: (value: TimeZone, name: String, line: Int)?
        /// The `stage` statements in order.
        public var stages: [StageStatement] = []
        /// The `integration` statements in order.
        public var integrations: [StageStatement] = []
        /// The `sso` statements in order.
        public var ssoProviders: [StageStatement] = []

        /// The opening hours that `hours` and `timezone` describe; nil without them (always open).
        public var openingHours: OpeningHours? {
            guard let hours, let timeZone else { return nil }
            return OpeningHours(groups: hours.value, timeZone: timeZone.value, timeZoneName: timeZone.name)
        }

        /// The first `hours` and `timezone` lines, valid or not: each needs the other.
        var hoursLine: Int?
        var timeZoneLine: Int?
    }

    /// One `stage NAME key=value …` or `integration NAME key=value …` statement.
    public struct StageStatement: Sendable {
        /// The stage name as written.
        public let name: String
        /// Its parameters.
        public let parameters: StageParameters
    }

    /// The file name used in messages.
    public let file: String

    /// Creates a parser that names `file` in its messages.
    public init(file: String) { self.file = file }

    /// Parses `text`, returning the sections read and every syntax problem found.
    public func parse(_ text: String) -> (sections: [Section], issues: [ConfigIssue]) {
        var sections: [Section] = []
        var issues: [ConfigIssue] = []
        var seenIDs: [OrgID: Int] = [:]
        // Lines after a broken header belong to no section; report them once, not line by line.
        var inBrokenSection = false

        func fail(_ line: Int, _ message: String) {
            issues.append(ConfigIssue(file: file, line: line, message: message))
        }

        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            if rawLine.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == 0xC2 || $0 == 0xE2 }),
               let control = rawLine.unicodeScalars.first(where: { TypedText.isForbidden($0) && $0 != "\t" && $0 != "\r" }) {
                fail(lineNumber, "control character \(Self.codePoint(control)) is not allowed; pipeline.conf is plain text")
                continue
            }
            let tokens: [String]
            switch Self.tokenize(String(rawLine)) {
            case .success(let words): tokens = words
            case .failure(let problem):
                fail(lineNumber, problem.message)
                continue
            }
            guard let first = tokens.first else { continue }

            if first.hasPrefix("[") {
                let header = tokens.joined(separator: " ")
                guard header.hasSuffix("]") else {
                    fail(lineNumber, "expected a section header of the form [org ID], found '\(header)'")
                    inBrokenSection = true
                    continue
                }
                let inner = header.dropFirst().dropLast().split(separator: " ").map(String.init)
                guard inner.count == 2, inner[0] == "org" else {
                    fail(lineNumber, "expected a section header of the form [org ID], found '\(header)'")
                    inBrokenSection = true
                    continue
                }
                guard OrgID.isValid(inner[1]) else {
                    fail(lineNumber, "expected an organisation id of 1-64 lowercase letters, digits and dashes, found '\(inner[1])'")
                    inBrokenSection = true
                    continue
                }
                let id = OrgID(inner[1])
                if let earlier = seenIDs[id] {
                    fail(lineNumber, "organisation '\(id)' is already defined on line \(earlier)")
                    inBrokenSection = true
                    continue
                }
                seenIDs[id] = lineNumber
                sections.append(Section(id: id, line: lineNumber))
                inBrokenSection = false
                continue
            }

            guard !sections.isEmpty, !inBrokenSection else {
                if !inBrokenSection {
                    fail(lineNumber, "expected an [org ID] section header before '\(first)'")
                    inBrokenSection = true
                }
                continue
            }
            let current = sections.count - 1

            if first == "stage" || first == "integration" || first == "sso" {
                guard tokens.count >= 2 else {
                    fail(lineNumber, "expected a\(first == "stage" ? " stage" : first == "sso" ? "n sso provider" : "n integration") name after '\(first)'")
                    continue
                }
                var values: [(key: String, value: String)] = []
                var valid = true
                for token in tokens.dropFirst(2) {
                    guard let equals = token.firstIndex(of: "="), equals != token.startIndex else {
                        fail(lineNumber, "expected key=value after '\(first) \(tokens[1])', found '\(token)'")
                        valid = false
                        break
                    }
                    let key = String(token[..<equals])
                    let value = String(token[token.index(after: equals)...])
                    if values.contains(where: { $0.key == key }) {
                        fail(lineNumber, "parameter '\(key)' is given twice")
                        valid = false
                        break
                    }
                    values.append((key, value))
                }
                if valid {
                    let statement = StageStatement(name: tokens[1], parameters: StageParameters(file: file, line: lineNumber, values: values))
                    if first == "stage" {
                        sections[current].stages.append(statement)
                    } else if first == "sso" {
                        sections[current].ssoProviders.append(statement)
                    } else {
                        sections[current].integrations.append(statement)
                    }
                }
                continue
            }

            if first == "limits" {
                if let earlier = sections[current].limits {
                    fail(lineNumber, "'limits' is already set on line \(earlier.line)")
                    continue
                }
                switch Self.limits(tokens.dropFirst()) {
                case .success(let limits): sections[current].limits = (limits, lineNumber)
                case .failure(let problem): fail(lineNumber, problem.message)
                }
                continue
            }

            if first == "attachments" {
                if let earlier = sections[current].attachments {
                    fail(lineNumber, "'attachments' is already set on line \(earlier.line)")
                    continue
                }
                switch Self.attachments(tokens.dropFirst()) {
                case .success(let attachments): sections[current].attachments = (attachments, lineNumber)
                case .failure(let problem): fail(lineNumber, problem.message)
                }
                continue
            }

            // `key = value` settings of the organisation.
            guard tokens.count >= 3, tokens[1] == "=" else {
                if tokens.count == 2, tokens[1] == "=" {
                    fail(lineNumber, "expected a value after '\(first) ='")
                } else if let equals = first.firstIndex(of: "="), tokens.count == 1 {
                    fail(lineNumber, "expected 'key = value' with spaces around '=', found '\(first[..<equals]) ='")
                } else {
                    fail(lineNumber, "expected 'name = …', 'hipaa = on|off', 'staff_access = all|assigned', 'widget_origins = …', 'hours = …', 'timezone = …', 'limits …', 'attachments …', 'stage NAME …', 'integration NAME …' or 'sso NAME …', found '\(first)'")
                }
                continue
            }
            let value = tokens.dropFirst(2).joined(separator: " ")
            switch first {
            case "name":
                if let earlier = sections[current].name {
                    fail(lineNumber, "'name' is already set on line \(earlier.line)")
                } else {
                    sections[current].name = (value, lineNumber)
                }
            case "hipaa":
                if let earlier = sections[current].hipaa {
                    fail(lineNumber, "'hipaa' is already set on line \(earlier.line)")
                } else if let flag = ConfigValue.flag(value) {
                    sections[current].hipaa = (flag, lineNumber)
                } else {
                    fail(lineNumber, "expected 'hipaa = on' or 'hipaa = off', found 'hipaa = \(value)'")
                }
            case "staff_access":
                if let earlier = sections[current].staffAccess {
                    fail(lineNumber, "'staff_access' is already set on line \(earlier.line)")
                } else if let access = OrgSettings.StaffAccess(rawValue: value) {
                    sections[current].staffAccess = (access, lineNumber)
                } else {
                    fail(lineNumber, "expected 'staff_access = all' or 'staff_access = assigned', found 'staff_access = \(value)'")
                }
            case "widget_origins":
                if let earlier = sections[current].widgetOrigins {
                    fail(lineNumber, "'widget_origins' is already set on line \(earlier.line)")
                    continue
                }
                switch Self.origins(value) {
                case .success(let origins): sections[current].widgetOrigins = (origins, lineNumber)
                case .failure(let problem): fail(lineNumber, problem.message)
                }
            case "hours":
                if let earlier = sections[current].hours {
                    fail(lineNumber, "'hours' is already set on line \(earlier.line)")
                    continue
                }
                if sections[current].hoursLine == nil { sections[current].hoursLine = lineNumber }
                switch Self.hours(value) {
                case .success(let groups): sections[current].hours = (groups, lineNumber)
                case .failure(let problem): fail(lineNumber, problem.message)
                }
            case "timezone":
                if let earlier = sections[current].timeZone {
                    fail(lineNumber, "'timezone' is already set on line \(earlier.line)")
                    continue
                }
                if sections[current].timeZoneLine == nil { sections[current].timeZoneLine = lineNumber }
                switch Self.timeZone(value) {
                case .success(let zone): sections[current].timeZone = (zone, value, lineNumber)
                case .failure(let problem): fail(lineNumber, problem.message)
                }
            default:
                fail(lineNumber, "expected 'name', 'hipaa', 'staff_access', 'widget_origins', 'hours', 'timezone', 'limits', 'attachments', 'stage', 'integration' or 'sso', found '\(first)'")
            }
        }
        for section in sections {
            if let line = section.hoursLine, section.timeZoneLine == nil {
                fail(line, "'hours' needs 'timezone = …' in [org \(section.id)] to say whose clock they follow, such as 'timezone = America/Chicago'")
            }
            if let line = section.timeZoneLine, section.hoursLine == nil {
                fail(line, "'timezone' is set but [org \(section.id)] has no 'hours'; add 'hours = …' (such as 'hours = mon-fri 08:00-18:00') or remove 'timezone'")
            }
        }
        return (sections, issues)
    }

    /// The text of a pipeline.conf read as bytes, or a `file:line: invalid UTF-8 …` issue for
    /// every line that is not UTF-8 (lines counted by their `\n` bytes).
    public static func text(of bytes: [UInt8], file: String) -> Result<String, ConfigError> {
        if let text = String(validating: bytes, as: UTF8.self) { return .success(text) }
        var issues: [ConfigIssue] = []
        var line = 1
        var start = 0
        for index in 0...bytes.count where index == bytes.count || bytes[index] == 0x0A {
            let lineBytes = bytes[start..<index]
            if String(validating: lineBytes, as: UTF8.self) == nil {
                let offset = Self.firstInvalidOffset(lineBytes)
                issues.append(ConfigIssue(file: file, line: line, message: "invalid UTF-8 at byte \(offset + 1) of the line; save the file as UTF-8"))
            }
            line += 1
            start = index + 1
        }
        return .failure(ConfigError(issues))
    }

    /// The offset in `bytes` of the first byte that does not begin a valid UTF-8 sequence.
    private static func firstInvalidOffset(_ bytes: ArraySlice<UInt8>) -> Int {
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): offset += UTF8.width(scalar)
            case .emptyInput, .error: return offset
            }
        }
    }

    /// `U+001B`.
    static func codePoint(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    struct TokenizeProblem: Error { let message: String }

    /// The keys of a `limits` line, with the ``OrgLimits`` field each sets.
    static var limitKeys: [(key: String, field: WritableKeyPath<OrgLimits, Int>)] {
        [
            ("conversations_per_minute", \.conversationsPerMinute),
            ("conversations_per_address_per_minute", \.conversationsPerAddressPerMinute),
            ("messages_per_second", \.messagesPerSecond),
            ("message_burst", \.messageBurst),
        ]
    }

    /// The range of every limit.
    public static let limitRange = 1...100_000

    /// Reads the `key=value` words of a `limits` line over ``OrgLimits/standard``.
    static func limits(_ words: ArraySlice<String>) -> Result<OrgLimits, TokenizeProblem> {
        let known = limitKeys.map(\.key).joined(separator: ", ")
        guard !words.isEmpty else { return .failure(TokenizeProblem(message: "expected key=value after 'limits'; keys: \(known)")) }
        var limits = OrgLimits.standard
        var seen: Set<String> = []
        for word in words {
            guard let equals = word.firstIndex(of: "="), equals != word.startIndex else {
                return .failure(TokenizeProblem(message: "expected key=value after 'limits', found '\(word)'"))
            }
            let key = String(word[..<equals])
            let value = String(word[word.index(after: equals)...])
            guard let field = limitKeys.first(where: { $0.key == key })?.field else {
                return .failure(TokenizeProblem(message: "unknown limit '\(key)'; expected one of \(known)"))
            }
            guard seen.insert(key).inserted else { return .failure(TokenizeProblem(message: "limit '\(key)' is given twice")) }
            guard let number = ConfigValue.integer(value), limitRange.contains(number) else {
                return .failure(TokenizeProblem(message:
                    "expected \(key) to be a whole number from \(limitRange.lowerBound) to \(limitRange.upperBound), found \(key)=\(value)"))
            }
            limits[keyPath: field] = number
        }
        guard limits.messageBurst >= limits.messagesPerSecond else {
            return .failure(TokenizeProblem(message:
                "expected message_burst (\(limits.messageBurst)) to be at least messages_per_second (\(limits.messagesPerSecond))"))
        }
        return .success(limits)
    }

    /// Reads the `key=value` words of an `attachments` line over ``OrgAttachments/standard``
    /// (`max_size=10MB`, `types=image/png,application/pdf`); the line alone takes the defaults.
    static func attachments(_ words: ArraySlice<String>) -> Result<OrgAttachments, TokenizeProblem> {
        var attachments = OrgAttachments.standard
        var seen: Set<String> = []
        for word in words {
            guard let equals = word.firstIndex(of: "="), equals != word.startIndex else {
                return .failure(TokenizeProblem(message: "expected key=value after 'attachments', found '\(word)'"))
            }
            let key = String(word[..<equals])
            let value = String(word[word.index(after: equals)...])
            guard seen.insert(key).inserted else { return .failure(TokenizeProblem(message: "'\(key)' is given twice")) }
            switch key {
            case "max_size":
                guard let bytes = ConfigValue.byteCount(value), (1...OrgAttachments.largestMaxBytes).contains(bytes) else {
                    return .failure(TokenizeProblem(message:
                        "expected max_size to be a size from 1 byte to 50MB (such as 512KB or 10MB), found max_size=\(value)"))
                }
                attachments.maxBytes = bytes
            case "types":
                let types = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                let known = ContentSniffer.knownTypes.joined(separator: ", ")
                guard !types.isEmpty else { return .failure(TokenizeProblem(message: "expected types=TYPE,…; known types: \(known)")) }
                for type in types where !ContentSniffer.knownTypes.contains(type) {
                    return .failure(TokenizeProblem(message: "unknown attachment type '\(type)'; expected some of \(known)"))
                }
                attachments.types = types
            default:
                return .failure(TokenizeProblem(message: "unknown attachments setting '\(key)'; expected max_size or types"))
            }
        }
        return .success(attachments)
    }

    /// Reads the comma-separated origins of `widget_origins`, each normalised.
    static func origins(_ value: String) -> Result<[String], TokenizeProblem> {
        var origins: [String] = []
        for part in value.split(separator: ",", omittingEmptySubsequences: false) {
            let text = String(part.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
            guard let origin = ConfigValue.origin(text) else {
                return .failure(TokenizeProblem(message:
                    "expected widget_origins to be origins such as https://www.clinic.example or https://clinic.example:8443 (scheme://host[:port], no path), separated by commas, found '\(text)'"))
            }
            guard !origins.contains(origin) else {
                return .failure(TokenizeProblem(message: "widget_origins lists \(origin) twice"))
            }
            origins.append(origin)
        }
        return .success(origins)
    }

    /// Splits a line into words: whitespace separates, `"…"` quotes (the quotes are dropped), and
    /// a `#` that begins a word starts a comment.
    static func tokenize(_ line: String) -> Result<[String], TokenizeProblem> {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quoted = false
        for character in line {
            if quoted {
                if character == "\"" { quoted = false } else { current.append(character) }
                continue
            }
            if character == "\"" {
                quoted = true
                inWord = true
            } else if character == "#" && !inWord {
                break
            } else if character.isWhitespace {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        if quoted { return .failure(TokenizeProblem(message: "expected a closing '\"'")) }
        if inWord { words.append(current) }
        return .success(words)
    }
}
