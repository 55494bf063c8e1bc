import Foundation

/// How much harm a scope's data can do in the wrong hands.
public enum APIRisk: String, Sendable, Hashable, CaseIterable, Comparable {
    /// Organisation information, staff names, queue figures.
    case low
    /// The conversation list and state, the audit log, webhooks.
    case medium
    /// PHI: messages, transcripts, attachments, pre-chat forms, opening a conversation to a patient.
    case high

    public static func < (lhs: APIRisk, rhs: APIRisk) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// What an integration token may do, one scope per kind of data and access.
public enum APIScope: String, Sendable, Hashable, CaseIterable, Comparable {
    case orgRead = "org:read"
    case queueRead = "queue:read"
    case usersRead = "users:read"
    case usersWrite = "users:write"
    case conversationsRead = "conversations:read"
    case conversationsWrite = "conversations:write"
    case auditRead = "audit:read"
    case webhooksWrite = "webhooks:write"
    case messagesRead = "messages:read"
    case transcriptsRead = "transcripts:read"
    case attachmentsRead = "attachments:read"
    case formsRead = "forms:read"
    case conversationsOpen = "conversations:open"

    /// The scope's risk level.
    public var risk: APIRisk {
        switch self {
        case .orgRead, .queueRead, .usersRead: .low
        case .conversationsRead, .conversationsWrite, .auditRead, .webhooksWrite: .medium
        // An account it makes, enables or promotes reads PHI in the consoles.
        case .usersWrite, .messagesRead, .transcriptsRead, .attachmentsRead, .formsRead, .conversationsOpen: .high
        }
    }

    public static func < (lhs: APIScope, rhs: APIScope) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// Scopes written as `org:read,messages:read`; nil if one is unknown, the list is empty or repeats one.
    public static func list(_ text: String) -> [APIScope]? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let scopes = parts.compactMap(APIScope.init(rawValue:))
        guard !parts.isEmpty, scopes.count == parts.count, Set(scopes).count == scopes.count else { return nil }
        return scopes.sorted()
    }
}

/// The identifier of an integration token: `tok_` and 16 hex digits. It is not the secret: the
/// secret is shown once and only its digest is kept.
public struct APITokenID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// Wraps an identifier as stored.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// An identifier from outside, or nil unless it has the form `tok_` + 16 lower-case hex digits.
    public init?(checking text: String) {
        let digits = text.utf8.dropFirst(4)
        guard text.hasPrefix("tok_"), digits.count == 16,
              digits.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
        rawValue = text
    }

    /// A new random identifier.
    public static func random() -> APITokenID {
        var generator = SystemRandomNumberGenerator()
        return APITokenID("tok_" + (0..<8).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined())
    }

    public var description: String { rawValue }
}

/// Where a token is in its life.
public enum APITokenState: String, Sendable, Hashable, CaseIterable {
    /// It asks for a high-risk scope and no second admin has approved it yet: it opens nothing.
    case awaitingApproval = "awaiting_approval"
    /// In force until it expires.
    case active
    /// Revoked; it never works again.
    case revoked
}

/// An integration token as the hub keeps it: everything but the secret.
public struct APIToken: Sendable, Hashable {
    public let id: APITokenID
    public let org: OrgID
    /// The `integration NAME type=api` of the organisation it belongs to.
    public let integration: String
    public let scopes: [APIScope]
    /// Addresses it may be used from; empty: anywhere.
    public let allowFrom: [CIDRBlock]
    public let createdBy: String
    public let createdAt: Date
    public let expiresAt: Date
    public var state: APITokenState
    /// Who approved or revoked it, and when.
    public var decidedBy: String?
    public var decidedAt: Date?

    /// Creates a record.
    public init(
        id: APITokenID, org: OrgID, integration: String, scopes: [APIScope], allowFrom: [CIDRBlock], createdBy: String,
        createdAt: Date, expiresAt: Date, state: APITokenState, decidedBy: String? = nil, decidedAt: Date? = nil
    ) {
        self.id = id
        self.org = org
        self.integration = integration
        self.scopes = scopes
        self.allowFrom = allowFrom
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.state = state
        self.decidedBy = decidedBy
        self.decidedAt = decidedAt
    }

    /// The highest risk among its scopes.
    public var risk: APIRisk { scopes.map(\.risk).max() ?? .low }

    /// Why a token opens nothing.
    public enum Refusal: String, Sendable, Hashable {
        case awaitingApproval = "awaiting_approval"
        case revoked
        case expired
        case address
        /// Its integration is no longer declared `type=api`.
        case integration
        /// A high-risk scope, in a HIPAA organisation, for an integration without a BAA.
        case noBAA = "no_baa"

        /// What the caller is told.
        public func message(_ token: APIToken) -> String {
            switch self {
            case .awaitingApproval: "this token asks for a high-risk scope and waits for an admin's approval"
            case .revoked: "this token was revoked"
            case .expired: "this token expired"
            case .address: "this token may not be used from this address"
            case .integration: "this organisation no longer declares 'integration \(token.integration) type=api …'; tokens belong to such an integration"
            case .noBAA: "integration '\(token.integration)' has no BAA (baa=no): in a HIPAA organisation it may hold low- and medium-risk scopes only"
            }
        }
    }

    /// Why the token opens nothing for a call from `address` at `now` to `org` as configured
    /// now, or nil if it is in force: it must be approved, unexpired, used from an allowed
    /// address, its integration still declared `type=api`, and in a HIPAA organisation a token
    /// with a high-risk scope needs that integration's BAA (`baa=yes`).
    public func refusal(from address: IPAddress?, at now: Date, in org: OrgSettings) -> Refusal? {
        switch state {
        case .awaitingApproval: return .awaitingApproval
        case .revoked: return .revoked
        case .active: break
        }
        if now >= expiresAt { return .expired }
        if !allowFrom.isEmpty {
            guard let address, allowFrom.contains(where: { $0.contains(address) }) else { return .address }
        }
        return refusal(in: org)
    }

    /// Why `org`'s configuration gives this token nothing whatever its state, or nil.
    public func refusal(in org: OrgSettings) -> Refusal? {
        guard let integration = org.integrations.first(where: { $0.name == self.integration }), integration.kind == .api else {
            return .integration
        }
        if org.hipaa && !integration.baa && risk == .high { return .noBAA }
        return nil
    }

    /// The secret shown once: `chk_`, the id's digits and 32 random bytes in base32.
    public static func secret(for id: APITokenID, random: String) -> String {
        "chk_\(id.rawValue.dropFirst(4))_\(random)"
    }

    /// The token id a secret names, or nil if it is not of the form ``secret(for:random:)`` makes.
    public static func id(ofSecret secret: String) -> APITokenID? {
        let parts = secret.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "chk", (16...128).contains(parts[2].count) else { return nil }
        return APITokenID(checking: "tok_" + parts[1])
    }
}
