/// Why a streamed request body (``HTTPBodyStream``) ended before its last byte.
public struct HTTPBodyError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Reason: Hashable, Sendable {
        case tooLarge
        case disconnected
        case timedOut
    }

    private let reason: Reason

    private init(_ reason: Reason) { self.reason = reason }

    /// The body grew past the route's ``HTTPRoute/maxBodyBytes``; the connection is closed.
    public static let tooLarge = HTTPBodyError(.tooLarge)
    /// The client went away before the body was complete, or the handler answered first.
    public static let disconnected = HTTPBodyError(.disconnected)
    /// No body bytes arrived for ``HTTPLimits/idleSeconds``; the connection is closed.
    public static let timedOut = HTTPBodyError(.timedOut)

    public var description: String {
        switch reason {
        case .tooLarge: "request body larger than the route accepts"
        case .disconnected: "client disconnected before the request body was complete"
        case .timedOut: "request body stalled past the idle limit"
        }
    }
}
