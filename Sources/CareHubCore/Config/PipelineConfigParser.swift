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
        /// The `stage` statements in order.
        public var stages: [StageStatement] = []
        /// The `integration` statements in order.
        public var integrations: [StageStatement] = []
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

            if first == "stage" || first == "integration" {
                guard tokens.count >= 2 else {
                    fail(lineNumber, "expected a\(first == "stage" ? " stage" : "n integration") name after '\(first)'")
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
                    } else {
                        sections[current].integrations.append(statement)
                    }
                }
                continue
            }

            // `key = value` settings of the organisation.
            guard tokens.count >= 3, tokens[1] == "=" else {
                if let equals = first.firstIndex(of: "="), tokens.count == 1 {
                    fail(lineNumber, "expected 'key = value' with spaces around '=', found '\(first[..<equals]) ='")
                } else {
                    fail(lineNumber, "expected 'name = …', 'hipaa = on|off', 'staff_access = all|assigned', 'stage NAME …' or 'integration NAME …', found '\(first)'")
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
            default:
                fail(lineNumber, "expected 'name', 'hipaa', 'staff_access', 'stage' or 'integration', found '\(first)'")
            }
        }
        return (sections, issues)
    }

    struct TokenizeProblem: Error { let message: String }

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
