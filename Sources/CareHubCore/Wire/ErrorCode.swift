/// The stable codes of `error` frames. Clients may switch on them; they never change meaning.
public enum ErrorCode: String, Sendable, Hashable, CaseIterable {
    /// The frame is not a JSON object.
    case badJSON = "bad_json"
    /// The message is larger than the hub's limit.
    case tooLarge = "too_large"
    /// A binary frame; the protocol is JSON text frames only.
    case binaryFrame = "binary_frame"
    /// `type` names no known frame type.
    case unknownType = "unknown_type"
    /// A field is missing, has the wrong JSON type, or an invalid value.
    case invalidField = "invalid_field"
    /// The organisation does not exist on this hub.
    case unknownOrg = "unknown_org"
    /// The frame needs a session; send `hello` or `login` first.
    case unauthenticated
    /// The connection already has a session.
    case alreadyAuthenticated = "already_authenticated"
    /// Credentials or a reconnect token were refused. Deliberately says nothing about which part was wrong.
    case authFailed = "auth_failed"
    /// The sender may not do this (wrong role, or another visitor's room).
    case forbidden
    /// No such room in the sender's organisation.
    case notFound = "not_found"
    /// The conversation has ended; nothing more can be sent to it.
    case conversationEnded = "conversation_ended"
    /// The session has expired; log in again.
    case sessionExpired = "session_expired"
    /// The hub is shutting down or the organisation is being reconfigured; retry later.
    case unavailable
    /// Admin API: the change breaks a rule; `issues` lists each problem with its line.
    case configRefused = "config_refused"
    /// Admin API: the state changed since the admin read it (pipeline.conf edited elsewhere, the
    /// organisation still holds conversations, a name taken); read again and retry.
    case conflict
    /// Too many requests of this kind from this address, organisation or conversation; the
    /// message says which limit and when to retry. Nothing was done.
    case rateLimited = "rate_limited"
    /// A HIPAA organisation is reached only over TLS (or from loopback, or through a listed
    /// proxy that terminated TLS); this connection is plain `ws://`.
    case insecureTransport = "insecure_transport"
    /// The page this WebSocket was opened from (its `Origin`) may not use this organisation.
    case originRefused = "origin_refused"
    /// An attachment's type (found in its bytes) is not one the organisation accepts.
    case unsupportedType = "unsupported_type"
    /// The malware scanner found a signature in an attachment; it was not stored.
    case infected
    /// An attachment waits for the malware scanner; nobody may fetch it yet.
    case attachmentHeld = "attachment_held"
    /// A single sign-on login whose identity provider did not confirm a second factor, where
    /// one is needed: send the `sso` frame again with the ticket and a TOTP code (the ticket
    /// still works). Nothing was counted against the account.
    case codeRequired = "code_required"
    /// A device sign-in the person has not finished at the identity provider yet: send the
    /// `sso` frame again after the `sso_device` frame's `interval`.
    case signInPending = "sign_in_pending"

    /// An unexpected failure inside the hub. The message carries no detail; the hub's log does.
    case `internal`
}
