import Foundation

/// One client frame on its way through an organisation's pipeline.
///
/// Stages pass a changed copy to `next`: the auth stage fills in ``session`` and ``conversation``,
/// the encrypt stage ``sealed`` and ``seq``.
public struct Request: Sendable {
    /// The connection the frame came from.
    public let connection: ConnectionID
    /// The client's address, for audit, allow-lists and limits: the socket's peer, or the
    /// address a listed proxy forwarded for.
    public let peer: String
    /// How the connection reached the hub: whether it is secure, and the page that opened it.
    public var channel: Channel = .local
    /// The client's correlation id.
    public let id: String?
    /// The request itself (a stage may pass on a changed copy: the scan stage passes an upload
    /// whose bytes go through the scanner).
    public var frame: ClientFrame
    /// When the hub received it.
    public let receivedAt: Date
    /// The session bound to the connection, or the one the auth stage just created.
    public var session: Session?
    /// The conversation the frame addresses, once the auth stage has authorised it.
    public var conversation: Conversation?
    /// Whether the auth stage just started ``conversation`` for this `hello`.
    public var startsConversation = false
    /// The message's sequence number, once reserved.
    public var seq: UInt64?
    /// The message text sealed for storage, set by the encrypt stage.
    public var sealed: SealedText?
    /// The pre-chat form sealed by the encrypt stage (after a `hello` that starts a conversation).
    public var sealedProfile: SealedText?
    /// A transfer's note for the colleague, sealed by the encrypt stage.
    public var sealedNote: SealedText?
    /// The conversation's record before this request changed who has it (after `claim`,
    /// `transfer` and `assign`, set by the store stage; ``conversation`` is the record after).
    public var replaced: Conversation?
    /// In a HIPAA organisation, the connections the store stage committed a `phi.delivered`
    /// record for, together with the message; fan-out sends to them, and records any other
    /// reader before sending to it.
    public var releasedTo: Set<ConnectionID>?
    /// The bearer token of an HTTP request (`attach`, `download`): a staff session's token or a
    /// visitor's reconnect token, for the auth stage to check. Nil for WebSocket frames.
    public var credential: String?
    /// An HTTP API call's method and route (`GET /api/v1/orgs/{org}/queue`), for the audit
    /// trail: the route's pattern, never the values in it. Nil for everything else.
    public var endpoint: String?
    /// An `attach` upload's file name sealed by the encrypt stage.
    public var sealedName: SealedText?
    /// Seals one chunk of an `attach` upload (its index, bytes and whether it is the last), set
    /// by the encrypt stage; the store stage calls it for each chunk it stores.
    public var chunkSealer: (@Sendable (_ index: Int, _ bytes: [UInt8], _ last: Bool) async throws -> SealedText)?
    /// What the scan stage found in an `attach` upload (nil: no scan stage ran).
    public var attachmentCheck: AttachmentCheck?
    /// An `attach` upload's record once the store stage has stored it (its name as stored).
    public var storedAttachment: Attachment?

    /// Creates a request as the hub receives it; set ``channel`` for a connection that is not local.
    public init(connection: ConnectionID, peer: String, id: String?, frame: ClientFrame, receivedAt: Date, session: Session?) {
        self.connection = connection
        self.peer = peer
        self.id = id
        self.frame = frame
        self.receivedAt = receivedAt
        self.session = session
    }
}

/// What the transport knows of how a connection reached the hub.
public struct Channel: Sendable, Hashable {
    /// TLS to the hub, or a loopback peer, or a listed proxy that says it terminated TLS.
    public var secure: Bool
    /// The `Origin` of the page that opened the WebSocket; nil from clients that are not browsers.
    public var origin: String?
    /// The hub's own origin as this connection reached it (`https://` + `Host`), when known.
    public var ownOrigin: String?

    /// Creates a channel.
    public init(secure: Bool, origin: String? = nil, ownOrigin: String? = nil) {
        self.secure = secure
        self.origin = origin
        self.ownOrigin = ownOrigin
    }

    /// A secure connection from no page (loopback tools, tests of the core).
    public static let local = Channel(secure: true)
}
