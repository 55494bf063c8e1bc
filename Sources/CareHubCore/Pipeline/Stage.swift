import Foundation

/// Passes a request on to the rest of the chain and returns what it produced.
public typealias Next = @Sendable (Request) async throws -> Outcome

/// One step of an organisation's message pipeline.
///
/// A stage looks at a request, may change it, refuse it by throwing a ``PipelineError``, or call
/// `next` and then adjust the ``Outcome`` on the way back, like middleware:
///
/// ```
///  request ─▶ auth ─▶ idle ─▶ encrypt ─▶ store ─▶ purge ─▶ fanout ─┐
///  reply   ◀─ auth ◀─ idle ◀─ encrypt ◀─ store ◀─ purge ◀─ fanout ◀┘
/// ```
///
/// Implementations must:
/// - reach storage, keys, time and delivery only through the ports in ``StageEnvironment``;
/// - pass every request they do not handle to `next` unchanged;
/// - never put message text, passwords or tokens in an error message or log line.
///
/// Adding a stage is one file with a type conforming to `Stage`, plus one line in the registry.
public protocol Stage: Sendable {
    /// The stage's typed parameters, parsed from its `stage` line in pipeline.conf.
    associatedtype Configuration: StageConfiguration
    /// The name pipeline.conf uses for the stage.
    static var name: String { get }
    /// Where the stage may stand in a chain and when it is mandatory.
    static var rules: StageRules { get }
    /// Creates the stage for one organisation.
    init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment)
    /// Handles a request, calling `next` to continue the chain.
    func handle(_ request: Request, next: Next) async throws -> Outcome
    /// Called about once a second by the hub, for time-driven work such as idle expiry.
    func tick(at now: Date) async
}

extension Stage {
    /// By default a stage may stand anywhere and is optional.
    public static var rules: StageRules { StageRules() }

    /// Stages without time-driven work do nothing on a tick.
    public func tick(at now: Date) async {}
}

/// A stage's parameters, parsed and checked when pipeline.conf is loaded.
public protocol StageConfiguration: Sendable {
    /// Reads the stage's parameters, consuming each key it knows; unknown keys are reported by the caller.
    /// `org` lets a stage refuse values below the HIPAA floor.
    init(parameters: inout StageParameters, org: OrgSettings) throws
    /// The parameters as they are in force, for summaries (`key=value`).
    var summary: [String] { get }
}

/// The ports a stage may use.
public struct StageEnvironment: Sendable {
    /// The time.
    public var clock: any WallClock
    /// Conversations.
    public var conversations: any ConversationStore
    /// Messages.
    public var messages: any MessageStore
    /// Staff accounts.
    public var users: any UserDirectory
    /// Passwords and tokens.
    public var credentials: any Credentials
    /// Message encryption.
    public var cipher: any Cipher
    /// Live sessions.
    public var sessions: any SessionStore
    /// Room membership and delivery.
    public var rooms: any RoomDirectory
    /// Out-of-band notifications.
    public var notifier: any Notifier
    /// Events for the hub.
    public var events: any PipelineEvents
    /// The audit trail.
    public var audit: any AuditLog
    /// Transcript sinks, for the end-of-chat hook.
    public var exporter: any TranscriptExporter
    /// The organisations' canned replies.
    public var replies: any CannedReplyStore
    /// What only this process knows (``NodeLocalState``), shared by every pipeline and kept
    /// across reloads.
    public var local: NodeLocalState
    /// Where changes other hub processes must apply are recorded (nil: one process, nothing recorded).
    public var journal: (any ChangeJournal)?
    /// This process's name in the journal.
    public var origin: String
    /// Attachments, kept where the messages are.
    public var attachments: any AttachmentStore
    /// The malware scanners `scan` stages may name.
    public var scanners: Scanners
    /// Integration tokens, which the auth stage checks for HTTP API calls (nil: no API here).
    public var tokens: (any APITokenStore)?
    /// Where conversation events go for webhook subscriptions (default: nowhere).
    public var webhooks: any WebhookEvents
    /// Device sign-ins at identity providers (default: none).
    public var signOn: any SignOn

    /// Bundles the ports.
    public init(
        clock: any WallClock, conversations: any ConversationStore, messages: any MessageStore,
        users: any UserDirectory, credentials: any Credentials, cipher: any Cipher,
        sessions: any SessionStore, rooms: any RoomDirectory, notifier: any Notifier, events: any PipelineEvents,
        audit: any AuditLog, exporter: any TranscriptExporter, replies: any CannedReplyStore, local: NodeLocalState = NodeLocalState(),
        journal: (any ChangeJournal)? = nil, origin: String = "hub",
        attachments: any AttachmentStore = NoAttachments(), scanners: Scanners = .none, tokens: (any APITokenStore)? = nil,
        webhooks: any WebhookEvents = NoWebhookEvents(), signOn: any SignOn = NoSignOn()
    ) {
        self.clock = clock
        self.conversations = conversations
        self.messages = messages
        self.users = users
        self.credentials = credentials
        self.cipher = cipher
        self.sessions = sessions
        self.rooms = rooms
        self.notifier = notifier
        self.events = events
        self.audit = audit
        self.exporter = exporter
        self.replies = replies
        self.local = local
        self.journal = journal
        self.origin = origin
        self.attachments = attachments
        self.scanners = scanners
        self.tokens = tokens
        self.webhooks = webhooks
        self.signOn = signOn
    }

    /// Limits on what strangers may ask for, shared by every pipeline.
    public var throttle: Throttle { local.throttle }
    /// Each open room's recent traffic, for staff who are not reading it.
    public var activity: RoomActivityLog { local.activity }
    /// Staff presence as last announced, and the queue of conversations nobody has taken.
    public var frontDesk: FrontDesk { local.frontDesk }

    /// Assignments through these ports.
    public var assignments: Assignments {
        Assignments(conversations: conversations, users: users, audit: audit, journal: journal, origin: origin)
    }
}
