import Foundation

/// A message as storage keeps it: the body is sealed when the organisation runs the encrypt stage.
public struct StoredMessage: Sendable, Hashable {
    /// The conversation (room) it belongs to.
    public let conversation: ConversationID
    /// Position in the conversation: increasing, unique, possibly with gaps.
    public let seq: UInt64
    /// The sender's display name (``Principal/displayName``).
    public let sender: String
    /// When the hub accepted it.
    public let at: Date
    /// The text, sealed or plain (empty beside an attachment).
    public var body: MessageBody
    /// The attachment the message carries, if any.
    public var attachment: AttachmentID?

    /// Creates a stored message.
    public init(conversation: ConversationID, seq: UInt64, sender: String, at: Date, body: MessageBody, attachment: AttachmentID? = nil) {
        self.conversation = conversation
        self.seq = seq
        self.sender = sender
        self.at = at
        self.body = body
        self.attachment = attachment
    }
}

/// A message body: readable text, ciphertext, or ciphertext that failed to open.
public enum MessageBody: Sendable, Hashable {
    /// Plain text (organisations without the encrypt stage, or after opening for a reader).
    case plain(String)
    /// AES-256-GCM ciphertext under the organisation's key.
    case sealed(SealedText)
    /// Ciphertext that did not authenticate; its text is withheld.
    case unreadable
}

/// Ciphertext with the identifier of the key that sealed it.
public struct SealedText: Sendable, Hashable {
    /// Which key version sealed it (e.g. `"v1"`).
    public let keyID: String
    /// Nonce ‖ ciphertext ‖ tag.
    public let bytes: [UInt8]

    /// Wraps sealed bytes.
    public init(keyID: String, bytes: [UInt8]) {
        self.keyID = keyID
        self.bytes = bytes
    }
}
