/// How much of a connection's incoming frames may wait for the hub before the transport stops
/// reading that connection.
///
/// When a connection's inbox holds ``maxFrames`` frames or ``maxBytes`` bytes, the hub pauses
/// reading its socket (`lws_rx_flow_control`): the client's further frames wait in TCP, which
/// holds the client back, and none is dropped. Reading resumes once the inbox is down to
/// ``resumeFrames`` frames and ``resumeBytes`` bytes.
public struct InboxLimits: Sendable, Hashable {
    /// Frames waiting at which reading pauses; the inbox never holds more. Default 64.
    public var maxFrames: Int
    /// Bytes waiting at which reading pauses; the inbox holds at most this plus one frame.
    /// Default 1 MiB.
    public var maxBytes: Int
    /// Frames waiting at or under which reading resumes (with ``resumeBytes``). Default 16.
    public var resumeFrames: Int
    /// Bytes waiting at or under which reading resumes (with ``resumeFrames``). Default 256 KiB.
    public var resumeBytes: Int

    /// The defaults: pause at 64 frames or 1 MiB, resume at 16 frames and 256 KiB.
    public static let standard = InboxLimits(maxFrames: 64, maxBytes: 1 << 20, resumeFrames: 16, resumeBytes: 1 << 18)

    /// Creates limits; the resume marks are clamped under the pause marks.
    public init(maxFrames: Int, maxBytes: Int, resumeFrames: Int, resumeBytes: Int) {
        self.maxFrames = max(1, maxFrames)
        self.maxBytes = max(1, maxBytes)
        self.resumeFrames = min(max(0, resumeFrames), self.maxFrames - 1)
        self.resumeBytes = min(max(0, resumeBytes), self.maxBytes - 1)
    }
}
