import Foundation

/// What a visitor typed into the widget's pre-chat form. ePHI: sealed at rest in a HIPAA
/// organisation, shown only to staff authorised for the conversation, purged with it.
public struct VisitorProfile: Sendable, Hashable {
    /// The fields a pre-chat form may send, with their byte limits.
    public static let fieldLimits: [String: Int] = ["name": 200, "email": 254, "phone": 40, "reason": 1000]

    /// The fields that keep newlines and tabs (``TypedText/Form/multiLine``); the others are single lines.
    public static let multiLineFields: Set<String> = ["reason"]

    /// Field name to value; only names in ``fieldLimits``. The decoder cleans each with ``TypedText``.
    public let fields: [String: String]

    public init(fields: [String: String]) { self.fields = fields }

    /// The canonical JSON form (sorted keys), as sealed and stored.
    public var json: [UInt8] {
        var writer = JSONWriter()
        for key in fields.keys.sorted() { writer.field(key, fields[key]!) }
        return Array(writer.finish().utf8)
    }

    /// Parses the stored JSON form.
    public init?(json: [UInt8]) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: String] else { return nil }
        fields = object
    }
}
