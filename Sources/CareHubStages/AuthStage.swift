import CareHubCore
import Foundation

/// Authenticates and authorises every request.
///
/// - `hello` starts a visitor conversation (with a fresh reconnect token, stored only as a digest)
///   or resumes one from its token;
/// - `login` checks a staff password against its stored hash and opens a session;
/// - every other frame needs a session, and is allowed only if the sender's role and room allow it.
///
/// Every refused credential gets the same ``PipelineError/authFailed``.
public struct AuthStage: Stage {
    /// Parameters of `stage auth`.
    public struct Configuration: StageConfiguration {
        /// `visitors=on|off`: whether anonymous visitors may start conversations (default on).
        public var visitors: Bool

        public init(parameters: inout StageParameters, org: OrgSettings) throws {
            visitors = try parameters.flag("visitors", default: true)
        }

        public var summary: [String] { ["visitors=\(visitors ? "on" : "off")"] }
    }

    public static let name = "auth"
    public static let rules = StageRules(required: true, requiredInHIPAA: true)

    private let configuration: Configuration
    private let org: OrgSettings
    private let environment: StageEnvironment

    public init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment) {
        self.configuration = configuration
        self.org = org
        self.environment = environment
    }

    public func handle(_ request: Request, next: Next) async throws -> Outcome {
        switch request.frame {
        case .hello(_, let token):
            return try await hello(request, token: token, next: next)
        case .login(_, let user, let password):
            return try await login(request, user: user, password: password, next: next)
        case .rooms, .subscribe, .unsubscribe, .send, .end, .logout:
            return try await authorise(request, next: next)
        }
    }

    private func hello(_ request: Request, token: String?, next: Next) async throws -> Outcome {
        guard request.session == nil else {
            throw PipelineError(.alreadyAuthenticated, "this connection already has a session")
        }
        let now = environment.clock.now
        let conversation: Conversation
        let reconnectToken: String
        if let token {
            guard let found = try await environment.conversations.find(org: org.id, tokenDigest: environment.credentials.digest(token)),
                  !found.hasEnded
            else { throw PipelineError.authFailed }
            conversation = found
            reconnectToken = token
        } else {
            guard configuration.visitors else {
                throw PipelineError.forbidden("this organisation does not take visitor chats")
            }
            reconnectToken = environment.credentials.newToken()
            conversation = try await environment.conversations.create(
                org: org.id, tokenDigest: environment.credentials.digest(reconnectToken), at: now)
        }
        let session = Session(token: environment.credentials.newToken(), org: org.id, principal: .visitor(conversation.id), createdAt: now)
        environment.sessions.insert(session)

        var forwarded = request
        forwarded.session = session
        forwarded.conversation = conversation
        forwarded.startsConversation = token == nil
        var outcome = try await next(forwarded)
        outcome.bind = environment.sessions.session(session.token) ?? session
        outcome.conversation = conversation
        outcome.visitorToken = reconnectToken
        return outcome
    }

    private func login(_ request: Request, user: String, password: Password, next: Next) async throws -> Outcome {
        guard request.session == nil else {
            throw PipelineError(.alreadyAuthenticated, "this connection already has a session")
        }
        let account = try await environment.users.user(org: org.id, name: user)
        // Verify even when the account is missing, so timing does not tell which part was wrong.
        let passwordMatches = environment.credentials.verify(password, against: account?.passwordHash)
        guard let account, passwordMatches, !account.disabled else { throw PipelineError.authFailed }

        let session = Session(
            token: environment.credentials.newToken(), org: org.id,
            principal: .staff(user: account.name, role: account.role), createdAt: environment.clock.now)
        environment.sessions.insert(session)
        var forwarded = request
        forwarded.session = session
        var outcome = try await next(forwarded)
        outcome.bind = environment.sessions.session(session.token) ?? session
        return outcome
    }

    private func authorise(_ request: Request, next: Next) async throws -> Outcome {
        guard let session = request.session else { throw PipelineError.unauthenticated }
        var forwarded = request
        switch request.frame {
        case .rooms, .subscribe, .unsubscribe:
            guard session.principal.isStaff else {
                throw PipelineError.forbidden("only staff may do '\(request.frame.kind.rawValue)'; a visitor is in its own room")
            }
        default:
            break
        }
        if let room = request.frame.room {
            guard session.principal.mayAccess(room) else {
                throw PipelineError.forbidden("a visitor may only use its own room")
            }
            guard let conversation = try await environment.conversations.conversation(room), conversation.org == org.id else {
                throw PipelineError.notFound(room)
            }
            forwarded.conversation = conversation
        }
        var outcome = try await next(forwarded)
        if outcome.conversation == nil { outcome.conversation = forwarded.conversation }
        if case .logout = request.frame {
            environment.sessions.remove(session.token)
            outcome.unbind = true
        }
        return outcome
    }
}
