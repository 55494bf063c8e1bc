/// One problem in a configuration file, located by line.
public struct ConfigIssue: Sendable, Hashable, CustomStringConvertible {
    /// The file as named to the loader.
    public let file: String
    /// 1-based line number.
    public let line: Int
    /// What was expected, or what is wrong.
    public let message: String

    /// Creates an issue.
    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    /// `file:line: message`, the form editors and people both read.
    public var description: String { "\(file):\(line): \(message)" }
}

/// Why a configuration was refused: every problem found, in file order.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The problems, sorted by line.
    public let issues: [ConfigIssue]

    /// Creates an error from one or more issues.
    public init(_ issues: [ConfigIssue]) {
        self.issues = issues.sorted { ($0.line, $0.message) < ($1.line, $1.message) }
    }

    /// One issue per line.
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
