import Foundation

/// The port for the current time. Stages never read the system clock directly.
public protocol WallClock: Sendable {
    /// The current time.
    var now: Date { get }
}

/// The real clock.
public struct SystemClock: WallClock {
    /// Creates the system clock.
    public init() {}
    public var now: Date { Date() }
}
