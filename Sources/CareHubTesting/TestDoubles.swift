import CareHubCore
import Foundation
import Synchronization

// In-memory stand-ins for the pipeline core's ports. They exist only for unit tests of the
// core and the stages; the real adapters (SQLite, OpenSSL, libwebsockets) are tested for real.

/// A clock the test moves by hand.
public final class ManualClock: WallClock {
    private let current: Mutex<Date>
    public init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) { current = Mutex(start) }
    public var now: Date { current.withLock { $0 } }
    public func advance(by seconds: TimeInterval) { current.withLock { $0 += seconds } }
}

public final class MemoryConversationStore: ConversationStore {
    private struct Row { var conversation: Conversation; var digest: [UInt8] }
    private let rows = Mutex<[Row]>([])
    public init() {}

    public func create(org: OrgID, tokenDigest: [UInt8], at: Date, offline: Bool) async throws -> Conversation {
        rows.withLock { rows in
            let conversation = Conversation(id: ConversationID("c_test\(rows.count + 1)"), org: org, startedAt: at, offline: offline)
            rows.append(Row(conversation: conversation, digest: tokenDigest))
            return conversation
        }
    }

    public func find(org: OrgID, tokenDigest: [UInt8]) async throws -> Conversation? {
        rows.withLock { $0.first { $0.conversation.org == org && $0.digest == tokenDigest }?.conversation }
    }

    public func conversation(_ id: ConversationID) async throws -> Conversation? {
        rows.withLock { $0.first { $0.conversation.id == id }?.conversation }
    }

    public func markEnded(_ id: ConversationID, at: Date) async throws {
        rows.withLock { rows in
            for index in rows.indices where rows[index].conversation.id == id && rows[index].conversation.endedAt == nil {
                rows[index].conversation.endedAt = at
            }
        }
    }

    public func list(org: OrgID, limit: Int) async throws -> [Conversation] {
        rows.withLock { Array($0.map(\.conversation).filter { $0.org == org }.reversed().prefix(limit)) }
    }

    public func page(org: OrgID, filter: ConversationFilter, limit: Int) async throws -> [Conversation] {
        let newestFirst = rows.withLock { $0.map(\.conversation).filter { $0.org == org } }.sorted {
            ($0.startedAt, $0.id.rawValue) > ($1.startedAt, $1.id.rawValue)
        }
        return Array(newestFirst.filter { conversation in
            if let ended = filter.ended, conversation.hasEnded != ended { return false }
            if let user = filter.assignedTo, conversation.assignedTo != user { return false }
            if let cursor = filter.before {
                // Compared as SQLite stores start times (seconds since 1970), which is what the cursor's text names.
                guard (conversation.startedAt.timeIntervalSince1970, conversation.id.rawValue) < (cursor.startedAt.timeIntervalSince1970, cursor.id.rawValue) else { return false }
            }
            return true
        }.prefix(limit))
    }

    private let profiles = Mutex<[ConversationID: MessageBody]>([:])

    public func setProfile(_ id: ConversationID, _ body: MessageBody) async throws { profiles.withLock { $0[id] = body } }
    public func profile(of id: ConversationID) async throws -> MessageBody? { profiles.withLock { $0[id] } }
    public func eraseProfile(_ id: ConversationID) async throws {
        _ = profiles.withLock { $0.removeValue(forKey: id) }
        handoffs.withLock { $0[id]?.note = nil }
    }

    private let handoffs = Mutex<[ConversationID: Handoff]>([:])

    public func setHandoff(_ id: ConversationID, _ handoff: Handoff) async throws { handoffs.withLock { $0[id] = handoff } }
    public func handoff(of id: ConversationID) async throws -> Handoff? { handoffs.withLock { $0[id] } }

    public func claim(_ id: ConversationID, by user: String) async throws -> String? {
        rows.withLock { rows in
            guard let index = rows.firstIndex(where: { $0.conversation.id == id }) else { return nil }
            if rows[index].conversation.assignedTo == nil { rows[index].conversation.assignedTo = user }
            return rows[index].conversation.assignedTo
        }
    }

    public func markRead(_ id: ConversationID, seq: UInt64) async throws -> Bool {
        rows.withLock { rows in
            guard let index = rows.firstIndex(where: { $0.conversation.id == id }), rows[index].conversation.readSeq < seq else { return false }
            rows[index].conversation.readSeq = seq
            return true
        }
    }

    private let purged = Mutex<Set<ConversationID>>([])
    private let retries = Mutex<[ConversationID: (attempts: Int, at: Date, reason: String)]>([:])

    /// The last recorded reason a conversation's hook was deferred, if it is pending.
    public func deferral(of id: ConversationID) -> (attempts: Int, at: Date, reason: String)? { retries.withLock { $0[id] } }

    public func unpurged(org: OrgID, startedBefore date: Date, limit: Int) async throws -> [Conversation] {
        let done = purged.withLock { $0 }
        return rows.withLock { Array($0.map(\.conversation).filter { $0.org == org && $0.startedAt < date && !done.contains($0.id) }.prefix(limit)) }
    }

    public func markPurged(_ id: ConversationID, at: Date) async throws {
        _ = purged.withLock { $0.insert(id) }
        _ = retries.withLock { $0.removeValue(forKey: id) }
        update(id) { $0.transcriptTo = nil; $0.purgeAttempts = 0 }
        try await markEnded(id, at: at)
    }

    public func duePurges(org: OrgID, at date: Date, limit: Int) async throws -> [Conversation] {
        let done = purged.withLock { $0 }
        let waiting = retries.withLock { $0 }
        return rows.withLock {
            Array($0.map(\.conversation).filter { conversation in
                conversation.org == org && conversation.hasEnded && !done.contains(conversation.id)
                    && (waiting[conversation.id].map { $0.at <= date } ?? true)
            }.prefix(limit))
        }
    }

    public func deferPurge(_ id: ConversationID, attempts: Int, retryAt: Date, reason: String) async throws {
        retries.withLock { $0[id] = (attempts, retryAt, reason) }
        update(id) { $0.purgeAttempts = attempts }
    }

    public func openConversations(org: OrgID, limit: Int) async throws -> [Conversation] {
        let done = purged.withLock { $0 }
        return rows.withLock { Array($0.map(\.conversation).filter { $0.org == org && !$0.hasEnded && !done.contains($0.id) }.prefix(limit)) }
    }

    public func requestTranscript(_ id: ConversationID, to address: String?) async throws { update(id) { $0.transcriptTo = address } }

    public func assign(_ id: ConversationID, to user: String?) async throws { update(id) { $0.assignedTo = user } }

    private func update(_ id: ConversationID, _ change: (inout Conversation) -> Void) {
        rows.withLock { rows in
            for index in rows.indices where rows[index].conversation.id == id { change(&rows[index].conversation) }
        }
    }
}

/// Why a double refused a write that its adapter would refuse too.
public struct Refused: Error, Hashable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Messages in memory, held to the SQLite store's contract: a message and the audit events given
/// with it are stored both or neither, one message per (conversation, seq), history by seq.
public final class MemoryMessageStore: MessageStore {
    private struct State { var messages: [StoredMessage] = []; var sequences: [ConversationID: UInt64] = [:] }
    private let state = Mutex(State())
    private let audit: RecordingAuditLog?
    /// Events appended with a message go to `audit`.
    public init(audit: RecordingAuditLog? = nil) { self.audit = audit }

    /// Everything stored, in order of append.
    public var all: [StoredMessage] { state.withLock { $0.messages } }

    public func reserveSequence(in conversation: ConversationID) async throws -> UInt64 {
        state.withLock { state in
            let next = (state.sequences[conversation] ?? 0) + 1
            state.sequences[conversation] = next
            return next
        }
    }

    public func append(_ message: StoredMessage, recording events: [AuditEvent]) async throws {
        try state.withLock { state in
            if case .unreadable = message.body { throw Refused("an unreadable body cannot be stored") }
            if state.messages.contains(where: { $0.conversation == message.conversation && $0.seq == message.seq }) {
                throw Refused("\(message.conversation) already has a message \(message.seq)")
            }
            // The events first: if the trail refuses them, the message is not stored either.
            try audit?.recordAll(events)
            state.messages.append(message)
        }
    }

    public func history(of conversation: ConversationID, limit: Int) async throws -> [StoredMessage] {
        state.withLock { Array(Self.inOrder($0.messages, of: conversation).suffix(limit)) }
    }

    public func messages(of conversation: ConversationID, after: UInt64, limit: Int) async throws -> [StoredMessage] {
        state.withLock { Array(Self.inOrder($0.messages, of: conversation).filter { $0.seq > after }.prefix(limit)) }
    }

    /// `conversation`'s messages by seq: appends may finish in another order than they reserved.
    private static func inOrder(_ messages: [StoredMessage], of conversation: ConversationID) -> [StoredMessage] {
        messages.filter { $0.conversation == conversation }.sorted { $0.seq < $1.seq }
    }

    public func purge(_ conversation: ConversationID) async throws -> Int {
        state.withLock { state in
            let before = state.messages.count
            state.messages.removeAll { $0.conversation == conversation }
            return before - state.messages.count
        }
    }

    public func plainMessages(of conversation: ConversationID, limit: Int) async throws -> [StoredMessage] {
        state.withLock { state in
            Array(Self.inOrder(state.messages, of: conversation).filter { message in
                guard case .plain = message.body else { return false }
                return true
            }.prefix(limit))
        }
    }

    public func seal(_ sealed: [(seq: UInt64, body: SealedText)], in conversation: ConversationID) async throws -> Int {
        state.withLock { state in
            var replaced = 0
            for (seq, body) in sealed {
                guard let index = state.messages.firstIndex(where: { $0.conversation == conversation && $0.seq == seq }),
                      case .plain = state.messages[index].body else { continue }
                state.messages[index].body = .sealed(body)
                replaced += 1
            }
            return replaced
        }
    }
}

public final class MemoryUserDirectory: UserDirectory {
    private let users = Mutex<[StaffUser]>([])
    public init(_ users: [StaffUser] = []) { self.users.withLock { $0 = users } }
    private let events = Mutex<[AuditEvent]>([])
    public func add(_ user: StaffUser) { users.withLock { $0.append(user) } }
    public func add(_ user: StaffUser, at: Date, audit event: AuditEvent?) async throws {
        try users.withLock { users in
            if users.contains(where: { $0.org == user.org && $0.name == user.name }) {
                throw PipelineError(.conflict, "account \(user.name) exists")
            }
            users.append(user)
        }
        if let event { events.withLock { $0.append(event) } }
    }
    /// The audit events recorded with added accounts.
    public var auditEvents: [AuditEvent] { events.withLock { $0 } }
    public func user(org: OrgID, name: String) async throws -> StaffUser? {
        users.withLock { $0.first { $0.org == org && $0.name == name } }
    }

    public func list(org: OrgID) async throws -> [StaffUser] {
        users.withLock { $0.filter { $0.org == org }.sorted { $0.name < $1.name } }
    }

    /// Changes an account as an administrator would (outside the pipeline).
    public func replace(org: OrgID, name: String, _ change: (inout StaffUser) -> Void) {
        _ = update(org, name) { change(&$0) }
    }

    /// Applies `change` to the account atomically and returns its result.
    private func update<T>(_ org: OrgID, _ name: String, _ change: (inout StaffUser) -> T) -> T? {
        users.withLock { users in
            guard let index = users.firstIndex(where: { $0.org == org && $0.name == name }) else { return nil }
            return change(&users[index])
        }
    }

    public func recordFailure(org: OrgID, name: String, at: Date, lockAfter: Int, lockFor: TimeInterval) async throws -> LoginThrottle {
        update(org, name) { user in
            user.throttle.failures += 1
            user.throttle.lastFailureAt = at
            if user.throttle.failures >= lockAfter { user.throttle.lockedUntil = at.addingTimeInterval(lockFor) }
            return user.throttle
        } ?? LoginThrottle()
    }

    public func recordSuccess(org: OrgID, name: String) async throws {
        update(org, name) { $0.throttle = LoginThrottle() }
    }

    public func setPendingSecret(org: OrgID, name: String, secret: SealedText) async throws {
        update(org, name) { $0.secondFactor.pendingSecret = secret }
    }

    public func confirmEnrollment(org: OrgID, name: String, counter: UInt64, recoveryCodeDigests: [[UInt8]]) async throws {
        update(org, name) { user in
            user.secondFactor = SecondFactor(secret: user.secondFactor.pendingSecret, lastCounter: counter, recoveryCodeDigests: recoveryCodeDigests)
        }
    }

    public func consumeCounter(org: OrgID, name: String, counter: UInt64) async throws -> Bool {
        update(org, name) { user in
            guard counter > user.secondFactor.lastCounter else { return false }
            user.secondFactor.lastCounter = counter
            return true
        } ?? false
    }

    public func consumeRecoveryCode(org: OrgID, name: String, digest: [UInt8]) async throws -> Bool {
        update(org, name) { user in
            guard let index = user.secondFactor.recoveryCodeDigests.firstIndex(of: digest) else { return false }
            user.secondFactor.recoveryCodeDigests.remove(at: index)
            return true
        } ?? false
    }
}

/// Credentials whose "hash" of a password is `plain:` + the password; tokens count up; the
/// "TOTP code" for a secret at a time step is the step number plus the secret's first byte.
public final class PlainCredentials: Credentials {
    private let counter = Atomic<Int>(0)
    public init() {}
    public static func hash(_ password: String) -> String { "plain:" + password }
    public func verify(_ password: Password, against hash: String?) async throws -> Bool {
        await Task.yield()  // a real hash suspends the caller; let parallel attempts interleave
        return hash == Self.hash(password.text)
    }
    public func newToken() -> String { "token-\(counter.add(1, ordering: .relaxed).newValue)" }
    public func digest(_ token: String) -> [UInt8] { Array(("digest:" + token).utf8) }

    public func newTOTPSecret() -> [UInt8] { [UInt8(truncatingIfNeeded: counter.add(1, ordering: .relaxed).newValue), 42] }

    /// The code the double accepts for `secret` at `time`.
    public static func code(secret: [UInt8], at time: Date) -> String {
        String(UInt64(time.timeIntervalSince1970) / 30 + UInt64(secret[0]))
    }

    public func totpCounter(_ code: String, secret: [UInt8], at now: Date) -> UInt64? {
        let step = UInt64(now.timeIntervalSince1970) / 30
        return (step - 1...step + 1).first { String($0 + UInt64(secret[0])) == code }
    }

    public func enrollment(secret: [UInt8], issuer: String, account: String) -> (secret: String, uri: String) {
        (secret.map(String.init).joined(separator: ","), "otpauth://totp/\(issuer):\(account)")
    }

    public func newRecoveryCodes() -> [String] { (1...10).map { "recovery-\($0)-\(counter.add(1, ordering: .relaxed).newValue)" } }
}

/// A reversible stand-in cipher: XOR with a per-scope byte, prefixed by a checksum of the
/// associated data, so tests can tell sealed from plain, detect mismatched associated data, and
/// see shredded scopes refuse to open.
public final class XORCipher: Cipher {
    public struct Mismatch: Error {}
    public struct Shredded: Error {}
    private let sealed = Atomic<Int>(0)
    private let shredded = Mutex<Set<KeyScope>>([])
    public init() {}
    public var sealCount: Int { sealed.load(ordering: .relaxed) }
    public func isShredded(_ scope: KeyScope) -> Bool { shredded.withLock { $0.contains(scope) } }

    private static func mask(_ scope: KeyScope) -> UInt8 { UInt8(truncatingIfNeeded: scope.description.utf8.count) | 0x80 }

    public func seal(_ plaintext: [UInt8], scope: KeyScope, associatedData: [UInt8]) async throws -> SealedText {
        guard !isShredded(scope) else { throw Shredded() }
        sealed.add(1, ordering: .relaxed)
        return SealedText(keyID: "test", bytes: Self.tag(associatedData) + plaintext.map { $0 ^ Self.mask(scope) })
    }

    public func open(_ sealed: SealedText, scope: KeyScope, associatedData: [UInt8]) async throws -> [UInt8] {
        guard !isShredded(scope) else { throw Shredded() }
        guard sealed.bytes.count >= 4, Array(sealed.bytes.prefix(4)) == Self.tag(associatedData) else { throw Mismatch() }
        return sealed.bytes.dropFirst(4).map { $0 ^ Self.mask(scope) }
    }

    private let preparedScopes = Mutex<Set<KeyScope>>([])
    /// Scopes whose key was made ahead of the first seal.
    public var prepared: Set<KeyScope> { preparedScopes.withLock { $0 } }

    public func prepare(_ scope: KeyScope) async throws {
        guard !isShredded(scope) else { throw Shredded() }
        _ = preparedScopes.withLock { $0.insert(scope) }
    }

    public func shred(_ scope: KeyScope) async throws {
        _ = shredded.withLock { $0.insert(scope) }
    }

    /// A 4-byte FNV-1a checksum: enough to notice different associated data in a test.
    private static func tag(_ bytes: [UInt8]) -> [UInt8] {
        var hash: UInt32 = 2_166_136_261
        for byte in bytes { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return withUnsafeBytes(of: hash.bigEndian) { Array($0) }
    }
}

/// Rooms with real membership rules, recording what was delivered to whom.
public final class RecordingRoomDirectory: RoomDirectory {
    private struct State {
        var rooms: [ConversationID: [RoomMember]] = [:]
        var staff: [OrgID: [RoomMember]] = [:]
        var delivered: [(ServerFrame, ConnectionID)] = []
    }
    private let state = Mutex(State())
    public init() {}

    /// Registers a staff connection for `staffConnections(of:)`.
    public func addStaff(_ member: RoomMember, org: OrgID) { state.withLock { $0.staff[org, default: []].append(member) } }

    /// Frames delivered to `connection`, in order.
    public func frames(to connection: ConnectionID) -> [ServerFrame] {
        state.withLock { $0.delivered.filter { $0.1 == connection }.map(\.0) }
    }

    public func join(_ room: ConversationID, member: RoomMember) {
        state.withLock { state in
            if !(state.rooms[room]?.contains(member) ?? false) { state.rooms[room, default: []].append(member) }
        }
    }
    public func leave(_ room: ConversationID, connection: ConnectionID) {
        state.withLock { $0.rooms[room]?.removeAll { $0.connection == connection } }
    }
    public func leaveAll(connection: ConnectionID) {
        state.withLock { state in for room in state.rooms.keys { state.rooms[room]?.removeAll { $0.connection == connection } } }
    }
    public func close(_ room: ConversationID) -> [RoomMember] {
        state.withLock { $0.rooms.removeValue(forKey: room) ?? [] }
    }
    public func members(of room: ConversationID) -> [RoomMember] { state.withLock { $0.rooms[room] ?? [] } }
    public func staffConnections(of org: OrgID) -> [RoomMember] { state.withLock { $0.staff[org] ?? [] } }
    public func deliver(_ frame: ServerFrame, to connections: [ConnectionID]) {
        state.withLock { state in for connection in connections { state.delivered.append((frame, connection)) } }
    }
}

public final class RecordingNotifier: Notifier {
    private let sent = Mutex<[StaffNotification]>([])
    public init() {}
    public var notifications: [StaffNotification] { sent.withLock { $0 } }
    private let routes = Mutex<[[String]]>([])
    /// The integrations each notification was queued for, in order.
    public var integrations: [[String]] { routes.withLock { $0 } }
    public func enqueue(_ notification: StaffNotification, via integrations: [String]) async throws {
        sent.withLock { $0.append(notification) }
        routes.withLock { $0.append(integrations) }
    }
}

/// Keeps audit events in memory; `failing` makes it refuse every event, as a trail that cannot
/// be written does.
public final class RecordingAuditLog: AuditLog {
    private let log = Mutex<(events: [AuditEvent], failing: Bool)>(([], false))
    public init() {}
    public var events: [AuditEvent] { log.withLock { $0.events } }
    public var actions: [String] { events.map(\.action) }
    public var failing: Bool {
        get { log.withLock { $0.failing } }
        set { log.withLock { $0.failing = newValue } }
    }
    public func record(_ event: AuditEvent) async throws { try recordAll([event]) }

    /// Records all of `events` or, failing, none of them.
    public func recordAll(_ events: [AuditEvent]) throws {
        try log.withLock { log in
            guard !events.isEmpty else { return }
            if log.failing { throw Refused("the audit trail refused the events") }
            log.events += events
        }
    }
}

/// Keeps exported transcripts in memory; `failing` makes every export throw.
public final class RecordingExporter: TranscriptExporter {
    private let state = Mutex<(exports: [(Transcript, ExportTarget)], failing: Bool)>(([], false))
    public init() {}
    public var exports: [(transcript: Transcript, target: ExportTarget)] { state.withLock { $0.exports.map { ($0.0, $0.1) } } }
    public var failing: Bool {
        get { state.withLock { $0.failing } }
        set { state.withLock { $0.failing = newValue } }
    }
    public func export(_ transcript: Transcript, to target: ExportTarget, org: OrgSettings) async throws {
        try state.withLock { state in
            if state.failing { throw ExportFailure("sink unavailable") }
            state.exports.append((transcript, target))
        }
    }
}

public final class RecordingEvents: PipelineEvents {
    private let log = Mutex<[PipelineEvent]>([])
    public init() {}
    public var events: [PipelineEvent] { log.withLock { $0 } }
    public func emit(_ event: PipelineEvent) { log.withLock { $0.append(event) } }
}

/// One of each double, wired into a ``StageEnvironment``.
/// Canned replies in memory; events go to `audit` with each change, as the SQLite adapter commits them.
public final class MemoryCannedReplies: CannedReplyStore {
    private let rows = Mutex<[OrgID: [CannedReply]]>([:])
    private let audit: RecordingAuditLog?
    public init(audit: RecordingAuditLog? = nil) { self.audit = audit }

    public func list(org: OrgID) async throws -> [CannedReply] {
        // By the bytes of the name, as SQLite orders text.
        rows.withLock { ($0[org] ?? []).sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) } }
    }

    public func save(_ reply: CannedReply, org: OrgID, by actor: String, at date: Date, limit: Int, recording event: AuditEvent) async throws -> CannedReplySave {
        let result = rows.withLock { rows -> CannedReplySave in
            var replies = rows[org] ?? []
            if let index = replies.firstIndex(where: { $0.name.utf8.elementsEqual(reply.name.utf8) }) {
                replies[index] = reply
                rows[org] = replies
                return .replaced
            }
            guard replies.count < limit else { return .full }
            rows[org] = replies + [reply]
            return .created
        }
        if result != .full { try await audit?.record(event) }
        return result
    }

    public func delete(org: OrgID, name: String, recording event: AuditEvent) async throws -> Bool {
        let removed = rows.withLock { rows -> Bool in
            guard let index = rows[org]?.firstIndex(where: { $0.name.utf8.elementsEqual(name.utf8) }) else { return false }
            rows[org]?.remove(at: index)
            return true
        }
        if removed { try await audit?.record(event) }
        return removed
    }

    public func count(org: OrgID) async throws -> Int { rows.withLock { $0[org]?.count ?? 0 } }
}

public struct TestWorld: Sendable {
    public let clock = ManualClock()
    public let conversations = MemoryConversationStore()
    public let messages: MemoryMessageStore
    public let users = MemoryUserDirectory()
    public let credentials = PlainCredentials()
    public let cipher = XORCipher()
    public let local: NodeLocalState
    public var sessions: InMemorySessionStore { local.sessions }
    public let rooms = RecordingRoomDirectory()
    public let notifier = RecordingNotifier()
    public let events = RecordingEvents()
    public let audit = RecordingAuditLog()
    public let exporter = RecordingExporter()
    public let replies: MemoryCannedReplies
    public let attachments: MemoryAttachmentStore
    /// Webhook subscriptions, and the events the fan-out stage raised for them.
    public let webhooks: MemoryWebhookStore
    /// The scanner every `scan` stage of the world talks to, whatever its address.
    public let scanner = MemoryScanner()
    public var throttle: Throttle { local.throttle }
    public var activity: RoomActivityLog { local.activity }

    public init(throttle: Throttle = Throttle()) {
        messages = MemoryMessageStore(audit: audit)
        replies = MemoryCannedReplies(audit: audit)
        attachments = MemoryAttachmentStore(messages: messages)
        webhooks = MemoryWebhookStore(audit: audit)
        local = NodeLocalState(throttle: throttle)
    }

    public var environment: StageEnvironment {
        StageEnvironment(
            clock: clock, conversations: conversations, messages: messages, users: users, credentials: credentials,
            cipher: cipher, sessions: sessions, rooms: rooms, notifier: notifier, events: events, audit: audit,
            exporter: exporter, replies: replies, local: local, attachments: attachments,
            scanners: Scanners { [scanner] _, _ in scanner }, webhooks: webhooks)
    }

    /// A request as the hub builds it, bound to the connection's current session if any.
    public func request(
        _ frame: ClientFrame, id: String? = nil, connection: ConnectionID = ConnectionID(1), session: Session? = nil, peer: String = "127.0.0.1"
    ) -> Request {
        Request(connection: connection, peer: peer, id: id, frame: frame, receivedAt: clock.now, session: session)
    }
}
