import CareHubCore
import CareHubCrypto
import Foundation

/// pipeline.conf on disk as the admin API edits it: one organisation's section at a time, every
/// write atomic, and every replaced version kept in `pipeline.conf.history/`.
public struct PipelineFile: Sendable {
    /// The file as read, with its version (SHA-256 of the contents, hex), which an edit names as its base.
    public struct Snapshot: Sendable, Hashable {
        public let text: String
        public let version: String

        public init(text: String) {
            self.text = text
            version = SHA256.hash(Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
        }
    }

    /// One organisation's section: its text and where it starts in the file.
    public struct Section: Sendable, Hashable {
        /// The section's lines, from its `[org …]` header to the line before the next header,
        /// without trailing blank lines.
        public let text: String
        /// The 1-based line of its header in the file.
        public let firstLine: Int
    }

    /// The file.
    public let path: String
    /// Versions kept before each admin write, newest last by name.
    public var historyDirectory: String { path + ".history" }

    public init(path: String) { self.path = path }

    /// Reads the file.
    public func read() throws -> Snapshot {
        Snapshot(text: try String(contentsOfFile: path, encoding: .utf8))
    }

    /// `org`'s section of `text`, or nil if the file has none.
    public static func section(_ org: OrgID, in text: String) -> Section? {
        guard let range = lineRange(of: org, in: text) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return Section(text: lines[range].joined(separator: "\n"), firstLine: range.lowerBound + 1)
    }

    /// `text` with `org`'s section replaced by `section`, everything else byte for byte as it was.
    public static func replacingSection(_ org: OrgID, in text: String, with section: String) -> String? {
        guard let range = lineRange(of: org, in: text) else { return nil }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var replacement = section.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        while replacement.last?.trimmingCharacters(in: .whitespaces).isEmpty == true { replacement.removeLast() }
        lines.replaceSubrange(range, with: replacement)
        return lines.joined(separator: "\n")
    }

    /// The 0-based lines of `org`'s section: its header up to the next section's header (or the
    /// end), less trailing blank lines.
    private static func lineRange(of org: OrgID, in text: String) -> Range<Int>? {
        let headers = PipelineConfigParser(file: "").parse(text).sections.map { ($0.id, $0.line - 1) }
        guard let index = headers.firstIndex(where: { $0.0 == org }) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let start = headers[index].1
        var end = index + 1 < headers.count ? headers[index + 1].1 : lines.count
        while end > start + 1 && lines[end - 1].trimmingCharacters(in: .whitespaces).isEmpty { end -= 1 }
        return start..<end
    }

    /// Keeps `previous` in the history directory (0600 files named by time, the organisation
    /// whose admin changed it and the admin: `TIME~ORG~ADMIN.conf`), then replaces the file
    /// atomically with `text`, keeping its permissions. Returns the kept copy's name.
    @discardableResult
    public func write(_ text: String, replacing previous: Snapshot, at date: Date, org: OrgID, author: String) throws -> String {
        let mode = ((try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? Int).map { mode_t($0) } ?? 0o644
        try FileManager.default.createDirectory(atPath: historyDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss.SSS'Z'"
        let admin = author.filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }
        let name = "\(formatter.string(from: date))~\(org.rawValue)~\(admin).conf"
        try AtomicFile.write(Array(previous.text.utf8), to: (historyDirectory as NSString).appendingPathComponent(name), mode: 0o600)
        try AtomicFile.write(Array(text.utf8), to: path, mode: mode)
        return name
    }

    /// The names of the versions kept when `org`'s admins changed the file, newest first; other
    /// organisations' changes (and who made them) are theirs alone.
    public func versions(of org: OrgID) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: historyDirectory)) ?? []).filter { name in
            let parts = name.split(separator: "~", omittingEmptySubsequences: false)
            return name.hasSuffix(".conf") && parts.count == 3 && parts[1] == org.rawValue
        }.sorted(by: >)
    }
}
