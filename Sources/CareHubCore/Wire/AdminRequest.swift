import Foundation

/// An operation of the admin API: `{"type":"admin","op":OP,…}` from an admin whose login passed
/// a second factor. docs/PROTOCOL.md documents each operation's fields and reply.
public enum AdminRequest: Sendable, Hashable {
    /// `pipeline.get`: the organisation's section of pipeline.conf, its version and the chain in force.
    case pipeline
    /// `pipeline.check` (`apply` false) and `pipeline.replace` (`apply` true): validate a new
    /// section and, when replacing, write and apply it. `base` is the version it was edited from.
    case replacePipeline(text: String, base: String?, apply: Bool)
    /// `hipaa.enable`: switch HIPAA mode on, recording the BAA attestation.
    case enableHIPAA(BAAAttestation)
    /// `hipaa.disable`: switch HIPAA mode off; with `purge`, first purge every conversation held.
    case disableHIPAA(purge: Bool)
    /// `users.list`.
    case users
    /// `users.add`: a new account with an initial password and, optionally, its display name.
    case addUser(name: String, role: Role, password: Password, displayName: String? = nil)
    /// `users.set_display_name`: the name patients see on the account's replies; nil (JSON
    /// `null`) clears it, and patients see the login name again.
    case setDisplayName(user: String, displayName: String?)
    /// `users.disable` / `users.enable`.
    case setDisabled(user: String, disabled: Bool)
    /// `users.set_role`.
    case setRole(user: String, role: Role)
    /// `users.reset_2fa`: the account enrols again at its next login.
    case resetSecondFactor(user: String)
    /// `users.unlock`: lift a lockout after failed logins.
    case unlock(user: String)
    /// `audit.list`: the organisation's audit events, newest first, before event `before`.
    case audit(limit: Int, before: Int64?)
    /// `audit.verify`: check the hash chain and its signed checkpoints.
    case verifyAudit
    /// `replies.list`: the organisation's canned replies, by name.
    case replies
    /// `replies.set`: create a canned reply, or replace the text of the one with its name.
    case saveReply(CannedReply)
    /// `replies.delete`: remove the canned reply of that name.
    case deleteReply(name: String)
    /// `tokens.list`: the organisation's integration tokens (never their secrets), newest first,
    /// with its `type=api` integrations and the scopes a token may have.
    case tokens
    /// `tokens.create`: a token for an `integration NAME type=api` of the organisation, with
    /// scopes, a life of `expiresDays` days and the addresses it may be used from (empty: any).
    case createToken(integration: String, scopes: [APIScope], expiresDays: Int, allowFrom: [CIDRBlock])
    /// `tokens.approve`: approve the token named in field `token` (the frame's `id` stays its
    /// correlation id); the admin who made it confirms with `totp`, a current code from their own
    /// authenticator.
    case approveToken(id: APITokenID, totp: String?)
    /// `tokens.revoke`: revoke the token named in field `token` for good.
    case revokeToken(id: APITokenID)

    /// The operation names, as on the wire.
    public enum Op: String, Sendable, CaseIterable {
        case pipelineGet = "pipeline.get"
        case pipelineCheck = "pipeline.check"
        case pipelineReplace = "pipeline.replace"
        case hipaaEnable = "hipaa.enable"
        case hipaaDisable = "hipaa.disable"
        case usersList = "users.list"
        case usersAdd = "users.add"
        case usersDisable = "users.disable"
        case usersEnable = "users.enable"
        case usersSetRole = "users.set_role"
        case usersReset2FA = "users.reset_2fa"
        case usersUnlock = "users.unlock"
        case usersSetDisplayName = "users.set_display_name"
        case auditList = "audit.list"
        case auditVerify = "audit.verify"
        case repliesList = "replies.list"
        case repliesSet = "replies.set"
        case repliesDelete = "replies.delete"
        case tokensList = "tokens.list"
        case tokensCreate = "tokens.create"
        case tokensApprove = "tokens.approve"
        case tokensRevoke = "tokens.revoke"
    }

    /// This request's operation.
    public var op: Op {
        switch self {
        case .pipeline: return .pipelineGet
        case .replacePipeline(_, _, let apply): return apply ? .pipelineReplace : .pipelineCheck
        case .enableHIPAA: return .hipaaEnable
        case .disableHIPAA: return .hipaaDisable
        case .users: return .usersList
        case .addUser: return .usersAdd
        case .setDisabled(_, let disabled): return disabled ? .usersDisable : .usersEnable
        case .setRole: return .usersSetRole
        case .resetSecondFactor: return .usersReset2FA
        case .unlock: return .usersUnlock
        case .setDisplayName: return .usersSetDisplayName
        case .audit: return .auditList
        case .verifyAudit: return .auditVerify
        case .replies: return .repliesList
        case .saveReply: return .repliesSet
        case .deleteReply: return .repliesDelete
        case .tokens: return .tokensList
        case .createToken: return .tokensCreate
        case .approveToken: return .tokensApprove
        case .revokeToken: return .tokensRevoke
        }
    }

    /// Longest pipeline section accepted, in bytes.
    public static let maxPipelineBytes = 32_768
    /// Most audit events one `audit.list` returns.
    public static let maxAuditEvents = 500
    /// The days a token may live (`expiresDays`), and its default.
    public static let tokenDays = 1...365
    public static let defaultTokenDays = 90
    /// Most CIDR blocks one token's `allowFrom` may list.
    public static let maxTokenAddresses = 32
}

/// A Business Associate Agreement on record: what an admin attests to when switching HIPAA mode on.
public struct BAAAttestation: Sendable, Hashable {
    /// The day the BAA was signed, `YYYY-MM-DD`.
    public let signedOn: String
    /// The privacy officer's name.
    public let officerName: String
    /// The privacy officer's e-mail address.
    public let officerEmail: String

    /// Creates an attestation; ``problem(today:)`` says whether it is acceptable.
    public init(signedOn: String, officerName: String, officerEmail: String) {
        self.signedOn = signedOn
        self.officerName = officerName
        self.officerEmail = officerEmail
    }

    /// Why the attestation cannot be recorded, or nil: the date must be a real day not after
    /// `today` (UTC), the name must be given, the address must look like one.
    public func problem(today: Date) -> String? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        guard signedOn.count == 10, let date = formatter.date(from: signedOn), formatter.string(from: date) == signedOn else {
            return "the BAA's signing date must be a day written YYYY-MM-DD, found '\(signedOn.prefix(20))'"
        }
        guard signedOn <= formatter.string(from: today) else { return "the BAA's signing date \(signedOn) is in the future" }
        guard !officerName.trimmingCharacters(in: .whitespaces).isEmpty else { return "the privacy officer's name is required" }
        guard Integration.isPlausibleAddress(officerEmail) else {
            return "the privacy officer's e-mail must be an address such as privacy@example.org"
        }
        return nil
    }
}
