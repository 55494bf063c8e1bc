import Foundation

/// An organisation's opening hours (placeholder until the parser lands).
public struct OpeningHours: Sendable, Hashable {
    public let timeZone: TimeZone
    public var timeZoneIdentifier: String { timeZone.identifier }
    public func isOpen(at date: Date) -> Bool { true }
    public func nextOpening(after date: Date) -> Date? { nil }
    public var description: String { "" }
}
