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
        /// The file it carries, if any.
        public var attachment: File?

        /// Creates a line.
        public init(seq: UInt64, from: String, at: Date, text: String?, attachment: File? = nil) {
            self.seq = seq
            self.from = from
            self.at = at
            self.text = text
            self.attachment = attachment
        }
    }

    /// A file a message carries, as it leaves the hub: always its size and type; its name and
    /// bytes only where the sink may hold them (``prepared(for:hipaa:)``).
    public struct File: Sendable, Hashable {
        public let id: AttachmentID
        /// The name the sender gave, opened; nil when it could not be opened or is withheld.
        public var name: String?
        /// Its length in bytes.
        public let size: Int
        /// The type found in its bytes.
        public let contentType: String
        /// ``AttachmentState/ready``, or ``AttachmentState/held`` (never passed a scan: its bytes
        /// are never exported).
        public let state: AttachmentState
        /// The file itself, opened: only in an export encrypted to the organisation's certificate;
        /// nil otherwise, or when it could not be opened.
        public var bytes: [UInt8]?

        /// Creates a file entry.
        public init(id: AttachmentID, name: String?, size: Int, contentType: String, state: AttachmentState = .ready, bytes: [UInt8]? = nil) {
            self.id = id
            self.name = name
            self.size = size
            self.contentType = contentType
            self.state = state
            self.bytes = bytes
        }

        /// `attachment: NAME (SIZE, TYPE)`, the line a plain export shows instead of the file
        /// (`attachment: (SIZE, TYPE)` without its name).
        public var summary: String {
            "attachment: \(name.map { $0 + " " } ?? "")(\(Self.formatted(size: size)), \(contentType))"
        }

        /// A size as people read it: `512 bytes`, `12.5 KB`, `3.1 MB` (units of 1,024).
        public static func formatted(size: Int) -> String {
            if size < 1024 { return size == 1 ? "1 byte" : "\(size) bytes" }
            let kilobytes = Double(size) / 1024
            if kilobytes < 1024 { return String(format: "%.1f KB", kilobytes) }
            return String(format: "%.1f MB", kilobytes / 1024)
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
    public var lines: [Line]

    /// Creates a transcript.
    public init(org: OrgID, conversation: ConversationID, startedAt: Date, endedAt: Date?, profileJSON: String?, lines: [Line]) {
        self.org = org
        self.conversation = conversation
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.profileJSON = profileJSON
        self.lines = lines
    }

    /// The transcript as it may leave for `target` from an organisation (`hipaa`): the files'
    /// bytes only inside an export encrypted to the organisation's certificate; outside one, only
    /// their size and type, and their names too unless the organisation is in HIPAA mode.
    public func prepared(for target: ExportTarget, hipaa: Bool) -> Transcript {
        if case .directory(_, _?) = target { return self }
        var copy = self
        copy.lines = lines.map { line in
            var line = line
            line.attachment?.bytes = nil
            if hipaa { line.attachment?.name = nil }
            return line
        }
        return copy
    }

    /// The export format (docs/CONFIGURATION.md): one JSON object, times in epoch milliseconds.
    /// A message with a file has an `attachment` object (`id`, `name` or null, `size`, `type`,
    /// `state`), with the file base64-encoded in `data` only when the transcript holds its bytes.
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
            if let file = line.attachment {
                element.object("attachment") { object in
                    object.field("id", file.id.rawValue)
                    if let name = file.name { object.field("name", name) } else { object.null("name") }
                    object.field("size", Int64(file.size))
                    object.field("type", file.contentType)
                    object.field("state", file.state.rawValue)
                    if let bytes = file.bytes { object.field("data", Data(bytes).base64EncodedString()) }
                }
            }
        }
        return w.finish()
    }

    /// The transcript as plain text, for an e-mail.
    public func plainText(organisation: String) -> String {
        let formatter = ISO8601DateFormatter()
        var text = "Your conversation with \(organisation), started \(formatter.string(from: startedAt)).\n\n"
        for line in lines {
            var said = line.text ?? "(unreadable)"
            if let file = line.attachment {
                // A file's message has no text of its own.
                said = (line.text ?? "").isEmpty ? file.summary : said + "\n" + file.summary
            }
            text += "[\(formatter.string(from: line.at))] \(line.from): \(said)\n"
        }
        return text
    }
}
