import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Testing

/// One organisation's pipeline over the in-memory doubles, with connections bound to sessions
/// the way the hub binds them.
final class StageHarness: @unchecked Sendable {
    let world: TestWorld
    private(set) var pipeline: Pipeline
    private let configured: ConfiguredOrg
    let org: OrgSettings
    /// Integration tokens, which the environment's auth stage checks HTTP API calls against.
    let tokens: MemoryAPITokenStore
    /// The ports every pipeline of the harness is built over.
    let environment: StageEnvironment
    private var bound: [ConnectionID: Session] = [:]

    static let hipaaConfig = """
        [org clinic]
        name = Riverside Clinic
        hipaa = on
        stage auth visitors=on
        stage idle timeout=10m lifetime=1h
        stage encrypt
        stage store history=50
        stage purge on=end
        stage fanout notify=count via=pager
        integration pager type=webhook url=https://pager.example.org/hook baa=yes
        """

    static let wellnessConfig = """
        [org studio]
        name = Lotus Studio
        hipaa = off
        stage auth
        stage store history=2
        stage fanout notify=preview preview_chars=10 via=chat
        integration chat type=webhook url=http://chat.example.org/hook baa=no
        """

    init(_ text: String = hipaaConfig, staff: [(String, Role, String)] = [("joy", .staff, "joy-password")], throttle: Throttle = Throttle()) throws {
        world = TestWorld(throttle: throttle)
        let config = try StageRegistry.standard.load(text, file: "test.conf")
        configured = config.orgs[0]
        org = configured.settings
        for (name, role, password) in staff {
            world.users.add(StaffUser(org: org.id, name: name, role: role, passwordHash: PlainCredentials.hash(password)))
        }
        tokens = MemoryAPITokenStore(audit: world.audit)
        var environment = world.environment
        environment.tokens = tokens
        self.environment = environment
        pipeline = configured.makePipeline(environment: environment)
    }

    /// Builds the organisation's pipeline again from the same configuration, as a reload does.
    func reload() {
        pipeline = configured.makePipeline(environment: environment)
    }

    /// The organisation's configured stages named in `names` only, in chain order, followed by
    /// `tail` (stages of the test's own that observe what reaches them).
    func chain(_ names: Set<String>, then tail: [any Stage] = []) -> Pipeline {
        let stages = configured.makePipeline(environment: environment).stages.filter { names.contains(type(of: $0).name) }
        return Pipeline(org: org, stages: stages + tail)
    }

    /// Runs a frame from a connection and returns its reply frame (or the error frame).
    @discardableResult
    func run(_ frame: ClientFrame, from connection: Int, id: String? = nil) async -> ServerFrame {
        let connectionID = ConnectionID(UInt64(connection))
        let request = world.request(frame, id: id, connection: connectionID, session: currentSession(connectionID))
        do {
            let outcome = try await pipeline.run(request)
            if let session = outcome.bind {
                bound[connectionID] = session
                if session.principal.isStaff {
                    world.rooms.addStaff(RoomMember(connection: connectionID, sessionToken: session.token), org: org.id)
                }
            }
            if outcome.unbind { bound[connectionID] = nil }
            return try outcome.reply(to: request) ?? .error(id: id, error: PipelineError(.internal, "no reply"))
        } catch let error as PipelineError {
            return .error(id: id, error: error)
        } catch {
            return .error(id: id, error: .internal)
        }
    }

    /// Runs a request as built (another peer, another channel) and returns its error code, or
    /// nil when it succeeded.
    func errorCode(of request: Request) async -> ErrorCode? {
        do {
            _ = try await pipeline.run(request)
            return nil
        } catch let error as PipelineError {
            return error.code
        } catch {
            return .internal
        }
    }

    private func currentSession(_ connection: ConnectionID) -> Session? {
        guard let session = bound[connection] else { return nil }
        return world.sessions.session(session.token) ?? session
    }

    /// Starts a visitor conversation on `connection` and returns its room.
    func visitor(_ connection: Int) async throws -> ConversationID {
        try expectWelcome(await run(.hello(org: org.id, token: nil), from: connection)).room
    }

    /// Second-factor secrets handed out by enrolment, and the last time step used, per user.
    private(set) var secrets: [String: [UInt8]] = [:]
    private var lastStep: [String: UInt64] = [:]
    /// Recovery codes from enrolment, per user.
    private(set) var recoveryCodes: [String: [String]] = [:]

    /// One login frame as sent, with an explicit code (or none).
    func rawLogin(_ connection: Int, user: String = "joy", password: String = "joy-password", code: String?) async -> ServerFrame {
        await run(.login(org: org.id, user: user, password: Password(password), totp: code), from: connection)
    }

    /// A code from the user's authenticator for a time step not used yet.
    func nextCode(_ user: String) -> String? {
        guard let secret = secrets[user] else { return nil }
        let now = UInt64(world.clock.now.timeIntervalSince1970) / 30
        let step = max(now, (lastStep[user] ?? 0) + 1)
        lastStep[user] = step
        return String(step + UInt64(secret[0]))
    }

    /// Logs `user` in on `connection`, enrolling the second factor first when asked to.
    func login(_ connection: Int, user: String = "joy", password: String = "joy-password") async -> ServerFrame {
        let reply = await rawLogin(connection, user: user, password: password, code: nextCode(user))
        guard case .enroll(_, let secret, _) = reply else { return reply }
        secrets[user] = secret.split(separator: ",").compactMap { UInt8($0) }
        let enrolled = await rawLogin(connection, user: user, password: password, code: nextCode(user))
        if case .session(_, _, _, _, let codes, _, _) = enrolled { recoveryCodes[user] = codes }
        return enrolled
    }

    func delivered(to connection: Int) -> [ServerFrame] {
        world.rooms.frames(to: ConnectionID(UInt64(connection)))
    }
}

extension ServerFrame {
    var errorCode: ErrorCode? {
        if case .error(_, let error) = self { return error.code }
        return nil
    }
}
