/// The identifier of an organisation, as written in a `[org ID]` header of pipeline.conf.
public struct OrgID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The identifier text: lowercase letters, digits and dashes.
    public let rawValue: String

    /// Wraps an identifier without validating it; see ``isValid(_:)``.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// Whether `text` is a well-formed organisation identifier (1–64 of `a-z`, `0-9`, `-`).
    public static func isValid(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64
            && text.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
    }

    public var description: String { rawValue }
    public static func < (lhs: OrgID, rhs: OrgID) -> Bool { lhs.rawValue < rhs.rawValue }
}
