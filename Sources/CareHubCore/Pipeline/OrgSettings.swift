/// An organisation's own settings from its `[org …]` section.
public struct OrgSettings: Sendable, Hashable {
    /// Which rooms staff members see.
    public enum StaffAccess: String, Sendable, Hashable {
        /// Every staff member sees every room of the organisation.
        case all
        /// Minimum necessary: a staff member sees only rooms an admin assigned to them; admins see all.
        case assigned
    }

    /// The organisation's id.
    public let id: OrgID
    /// Its name as shown to people (in notifications, pages).
    public let displayName: String
    /// Whether the organisation is in HIPAA mode.
    public let hipaa: Bool
    /// Which rooms staff members see (`staff_access = all | assigned`).
    public let staffAccess: StaffAccess
    /// The outside services it sends to, in file order.
    public let integrations: [Integration]
    /// The OpenID Connect providers its staff may log in with (`sso NAME …`), in file order.
    public let sso: [SSOProvider]
    /// What it accepts from strangers (`limits …`); ``OrgLimits/standard`` when not set.
    public let limits: OrgLimits
    /// Origins (`https://www.clinic.example`) of the pages that may embed its widget
    /// (`widget_origins = …`). A browser's WebSocket from any other page is refused; empty
    /// allows the hub's own origin only. Clients that send no `Origin` (not a browser) pass.
    public let widgetOrigins: [String]
    /// When it is open (`hours = …` and `timezone = …`); nil is always open. The widget's
    /// `availability` frame reports it; nothing is refused outside these hours.
    public let hours: OpeningHours?
    /// What it accepts as attachments (`attachments …`); nil takes none.
    public let attachments: OrgAttachments?

    /// Creates settings.
    public init(
        id: OrgID, displayName: String, hipaa: Bool, staffAccess: StaffAccess = .all, integrations: [Integration] = [],
        sso: [SSOProvider] = [], limits: OrgLimits = .standard, widgetOrigins: [String] = [], hours: OpeningHours? = nil,
        attachments: OrgAttachments? = nil
    ) {
        self.id = id
        self.displayName = displayName
        self.hipaa = hipaa
        self.staffAccess = staffAccess
        self.integrations = integrations
        self.sso = sso
        self.limits = limits
        self.widgetOrigins = widgetOrigins
        self.hours = hours
        self.attachments = attachments
    }

    /// The integration named `name`.
    public func integration(_ name: String) -> Integration? { integrations.first { $0.name == name } }

    /// The SSO provider named `name`.
    public func ssoProvider(_ name: String) -> SSOProvider? { sso.first { $0.name == name } }
}
