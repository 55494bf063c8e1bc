/// Where a stage may stand in a chain, and when it is mandatory.
public struct StageRules: Sendable, Hashable {
    /// Stages that, when present, must come before this one.
    public var after: [String]
    /// Stages that, when present, must come after this one.
    public var before: [String]
    /// Whether every organisation must run this stage.
    public var required: Bool
    /// Whether a HIPAA organisation must run this stage (part of the HIPAA floor).
    public var requiredInHIPAA: Bool
    /// Whether a HIPAA organisation that takes attachments must run this stage.
    public var requiredInHIPAAWithAttachments: Bool

    /// Creates rules.
    public init(after: [String] = [], before: [String] = [], required: Bool = false, requiredInHIPAA: Bool = false, requiredInHIPAAWithAttachments: Bool = false) {
        self.after = after
        self.before = before
        self.required = required
        self.requiredInHIPAA = requiredInHIPAA
        self.requiredInHIPAAWithAttachments = requiredInHIPAAWithAttachments
    }
}
