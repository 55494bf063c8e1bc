/// Something a stage noticed that the hub must act on.
public enum PipelineEvent: Sendable, Hashable {
    /// A session expired; the hub tells its connection and unbinds it.
    case sessionExpired(Session, SessionExpiry)
    /// A notification could not be queued; the message itself was stored and delivered.
    case notificationFailed(org: OrgID, conversation: ConversationID)
    /// A webhook event could not be queued; the message or change itself was committed.
    case webhookFailed(org: OrgID, conversation: ConversationID)
    /// A conversation's export failed; it stays unpurged and the hook will try again.
    case purgeDeferred(org: OrgID, conversation: ConversationID, attempts: Int)
    /// The organisation's malware scanner could not be reached or failed; `reason` names the
    /// scanner's address and the failure, never a file's name or bytes.
    case scannerUnavailable(org: OrgID, reason: String)
}

/// The port through which stages emit events instead of reaching into the hub.
public protocol PipelineEvents: Sendable {
    /// Reports an event. Must not block.
    func emit(_ event: PipelineEvent)
}
