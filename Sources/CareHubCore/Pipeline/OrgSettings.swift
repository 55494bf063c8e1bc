/// An organisation's own settings from its `[org …]` section.
public struct OrgSettings: Sendable, Hashable {
    /// The organisation's id.
    public let id: OrgID
    /// Its name as shown to people (in notifications, pages).
    public let displayName: String
    /// Whether the organisation is in HIPAA mode.
    public let hipaa: Bool

    /// Creates settings.
    public init(id: OrgID, displayName: String, hipaa: Bool) {
        self.id = id
        self.displayName = displayName
        self.hipaa = hipaa
    }
}
