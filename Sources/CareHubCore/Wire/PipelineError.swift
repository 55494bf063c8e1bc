/// An error a request ends with, reported to the sender as an `error` frame.
///
/// The `message` is written for people and never contains message text, passwords or tokens.
public struct PipelineError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The stable wire code.
    public let code: ErrorCode
    /// A readable explanation.
    public let message: String
    /// For `rate_limited`: whole seconds until a retry may succeed (HTTP's `Retry-After`).
    public var retryAfter: Int?

    /// Creates an error with a code and a readable message.
    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// The one answer for every refused credential.
    public static let authFailed = PipelineError(.authFailed, "authentication failed")
    /// A frame that needs a session arrived before `hello` or `login`.
    public static let unauthenticated = PipelineError(.unauthenticated, "send hello or login first")
    /// The session expired.
    public static func sessionExpired(_ why: SessionExpiry) -> PipelineError {
        PipelineError(.sessionExpired, why == .idle ? "session expired after inactivity; log in again" : "session reached its maximum lifetime; log in again")
    }
    /// The sender may not do this.
    public static func forbidden(_ why: String) -> PipelineError { PipelineError(.forbidden, why) }
    /// No such room for this sender.
    public static func notFound(_ room: ConversationID) -> PipelineError { PipelineError(.notFound, "no room \(room) in this organisation") }
    /// An unexpected failure; `detail` goes to the log, not to the client.
    public static let `internal` = PipelineError(.internal, "internal error; the request was not carried out")
}
