import Foundation

/// A conversation's full text as it leaves the hub at its end: for the organisation's export sink,
/// or (outside HIPAA mode) for the visitor's own e-mail copy.
public struct Transcript: Sendable, Hashable {
    /// One message.
    public struct Line: Sendable, Hashable {
        /// Its position in the conversation.
        public let seq: UInt64
        /// Who sent it (`visitor` or a staff user name).
        public let from: String
        /// When the hub accepted it.
        public let at: Date
        /// Its text, or nil when it could not be decrypted.
        public let text: String?

        /// Creates a line.
        public init(seq: UInt64, from: String, at: Date, text: String?) {
            self.seq = seq
            self.from = from
            self.at = at
            self.text = text
        }
    }

    /// The organisation.
    public let org: OrgID
    /// The conversation.
    public let conversation: ConversationID
    /// When it started.
    public let startedAt: Date
    /// When it ended.
    public let endedAt: Date?
    /// The pre-chat form as JSON, if one was given.
    public let profileJSON: String?
    /// Every message, in order.
    public let lines: [Line]

    /// Creates a transcript.
    public init(org: OrgID, conversation: ConversationID, startedAt: Date, endedAt: Date?, profileJSON: String?, lines: [Line]) {
        self.org = org
        self.conversation = conversation
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.profileJSON = profileJSON
        self.lines = lines
    }

    /// The export format (docs/CONFIGURATION.md): one JSON object, times in epoch milliseconds.
    public func json() -> String {
        var w = JSONWriter()
        w.field("format", "carehub.transcript.v1")
        w.field("org", org.rawValue)
        w.field("conversation", conversation.rawValue)
        w.field("startedAt", startedAt.epochMilliseconds)
        if let endedAt { w.field("endedAt", endedAt.epochMilliseconds) } else { w.null("endedAt") }
        if let profileJSON { w.raw("visitor", profileJSON) } else { w.null("visitor") }
        w.array("messages", lines) { element, line in
            element.field("seq", line.seq)
            element.field("from", line.from)
            element.field("at", line.at.epochMilliseconds)
            if let text = line.text { element.field("text", text) } else { element.null("text") }
        }
        return w.finish()
    }

    /// The transcript as plain text, for an e-mail.
    public func plainText(organisation: String) -> String {
        let formatter = ISO8601DateFormatter()
        var text = "Your conversation with \(organisation), started \(formatter.string(from: startedAt)).\n\n"
        for line in lines {
            text += "[\(formatter.string(from: line.at))] \(line.from): \(line.text ?? "(unreadable)")\n"
        }
        return text
    }
}
