import CareHubCore
@testable import CareHubServer
import Foundation
import Testing

@Suite("admin API: integration tokens", .serialized)
struct AdminTokenTests {
    /// The harness's clinic with an API integration under a BAA and the two admins `boss` and
    /// `chief` (logged in on connections 1 and 2).
    static func clinic() async throws -> HubHarness {
        let config = HubHarness.config.replacingOccurrences(
            of: "name = Test Clinic\n", with: "name = Test Clinic\nintegration ehr type=api baa=yes\nintegration hooks type=webhook url=https://hooks.example.org/x baa=yes\n")
        let harness = try HubHarness(config: config)
        try await harness.addUser("boss", role: .admin)
        try await harness.addUser("chief", role: .admin)
        harness.open(1)
        harness.open(2)
        #expect(try await harness.login(1, "boss")["role"] as? String == "admin")
        #expect(try await harness.login(2, "chief")["role"] as? String == "admin")
        return harness
    }

    func admin(_ harness: HubHarness, _ connection: UInt64, _ op: String, _ fields: [String: Any] = [:]) async throws -> [String: Any] {
        try await harness.request(connection, ["type": "admin", "op": op, "id": op].merging(fields) { $1 }, ["admin"])
    }

    func result(_ reply: [String: Any]) throws -> [String: Any] {
        try #require(reply["result"] as? [String: Any], "not an admin result: \(reply)")
    }

    func refusals(_ harness: HubHarness) async throws -> [String] {
        try await harness.hub.audit.recent(org: OrgID("clinic"), before: nil, limit: 100)
            .filter { $0.event.action == "token.approval_refused" }.reversed().map(\.event.detail)
    }

    @Test func aTokenItsMakerApprovesNeedsAFreshCodeFromTheirOwnAuthenticator() async throws {
        let harness = try await Self.clinic()
        let made = try result(try await admin(harness, 1, "tokens.create", ["integration": "ehr", "scopes": ["messages:read", "org:read"], "expiresDays": 30]))
        let secret = try #require(made["secret"] as? String)
        let token = try #require(made["token"] as? [String: Any])
        let id = try #require(token["id"] as? String)
        #expect(secret.hasPrefix("chk_"))
        #expect(token["state"] as? String == "awaiting_approval" && token["risk"] as? String == "high")
        #expect(token["scopes"] as? [String] == ["org:read", "messages:read"] && token["createdBy"] as? String == "boss")
        #expect(token["decidedBy"] is NSNull && token["decidedAt"] is NSNull)
        let life = try #require(token["expiresAt"] as? Int64) - (try #require(token["createdAt"] as? Int64))
        #expect(life == 30 * 86_400_000)

        let missing = try await admin(harness, 1, "tokens.approve", ["token": id])
        #expect(missing["code"] as? String == "forbidden")
        let wrong = try await admin(harness, 1, "tokens.approve", ["token": id, "totp": try harness.wrongCode(for: "boss")])
        #expect(wrong["code"] as? String == "auth_failed")
        // The code the login used is spent.
        let replayed = try await admin(harness, 1, "tokens.approve", ["token": id, "totp": try harness.code(for: "boss", step: 0)])
        #expect(replayed["code"] as? String == "auth_failed")
        // Another admin's code is not the maker's.
        let colleagues = try await admin(harness, 1, "tokens.approve", ["token": id, "totp": try harness.code(for: "chief", step: 1)])
        #expect(colleagues["code"] as? String == "auth_failed")
        #expect(try await refusals(harness) == ["reason=code_missing", "reason=code", "reason=code_replayed", "reason=code"])
        let listed = try result(try await admin(harness, 1, "tokens.list"))
        #expect((listed["tokens"] as? [[String: Any]])?.first?["state"] as? String == "awaiting_approval")

        let approved = try result(try await admin(harness, 1, "tokens.approve", ["token": id, "totp": try harness.code(for: "boss", step: 1)]))
        let after = try #require(approved["token"] as? [String: Any])
        #expect(after["state"] as? String == "active" && after["decidedBy"] as? String == "boss" && after["decidedAt"] is Int64)
        let events = try await harness.hub.audit.recent(org: OrgID("clinic"), before: nil, limit: 100)
        #expect(events.first?.event.action == "token.approved" && events.first?.event.detail.hasSuffix("second_factor=yes") == true)
        #expect(!events.contains { $0.event.detail.contains(secret) })
        await harness.stop()
    }

    @Test func anotherAdminApprovesWithoutACodeAndARevokedTokenStaysRevoked() async throws {
        let harness = try await Self.clinic()
        let made = try result(try await admin(harness, 1, "tokens.create", ["integration": "ehr", "scopes": ["transcripts:read"], "allowFrom": ["10.0.0.0/8"]]))
        let id = try #require((made["token"] as? [String: Any])?["id"] as? String)
        let life = try #require((made["token"] as? [String: Any])?["expiresAt"] as? Int64) - (try #require((made["token"] as? [String: Any])?["createdAt"] as? Int64))
        #expect(life == 90 * 86_400_000)
        let approved = try result(try await admin(harness, 2, "tokens.approve", ["token": id]))
        #expect((approved["token"] as? [String: Any])?["state"] as? String == "active")
        #expect((approved["token"] as? [String: Any])?["decidedBy"] as? String == "chief")
        #expect(try await admin(harness, 2, "tokens.approve", ["token": id])["code"] as? String == "conflict")
        let revoked = try result(try await admin(harness, 2, "tokens.revoke", ["token": id]))
        #expect((revoked["token"] as? [String: Any])?["state"] as? String == "revoked")
        #expect((revoked["token"] as? [String: Any])?["allowFrom"] as? [String] == ["10.0.0.0/8"])
        #expect(try await admin(harness, 1, "tokens.revoke", ["token": id])["code"] as? String == "conflict")
        #expect(try await admin(harness, 1, "tokens.revoke", ["token": "tok_0000000000000000"])["code"] as? String == "not_found")
        #expect(try await admin(harness, 1, "tokens.approve", ["token": "tok_0000000000000000"])["code"] as? String == "not_found")
        #expect(try await refusals(harness).isEmpty)
        await harness.stop()
    }

    @Test func theListNamesTheAPIIntegrationsAndScopesAndNeverASecret() async throws {
        let harness = try await Self.clinic()
        let low = try result(try await admin(harness, 1, "tokens.create", ["integration": "ehr", "scopes": ["queue:read"]]))
        #expect((low["token"] as? [String: Any])?["state"] as? String == "active")
        let secret = try #require(low["secret"] as? String)
        #expect(try await admin(harness, 1, "tokens.create", ["integration": "hooks", "scopes": ["org:read"]])["code"] as? String == "not_found")
        #expect(try await admin(harness, 1, "tokens.create", ["integration": "pager", "scopes": ["org:read"]])["code"] as? String == "not_found")
        let listed = try result(try await admin(harness, 1, "tokens.list"))
        let tokens = try #require(listed["tokens"] as? [[String: Any]])
        #expect(tokens.count == 1 && tokens[0]["risk"] as? String == "low" && tokens[0]["expired"] as? Bool == false)
        #expect(!tokens[0].keys.contains("secret"))
        #expect((listed["integrations"] as? [[String: Any]])?.map { $0["name"] as? String } == ["ehr"])
        let scopes = try #require(listed["scopes"] as? [[String: Any]])
        #expect(scopes.count == APIScope.allCases.count)
        #expect(scopes.first { $0["scope"] as? String == "forms:read" }?["risk"] as? String == "high")
        let text = String(decoding: try JSONSerialization.data(withJSONObject: listed), as: UTF8.self)
        #expect(!text.contains(secret) && !text.contains("chk_"))
        await harness.stop()
    }

    @Test func staffMayNotManageTokens() async throws {
        let harness = try await Self.clinic()
        try await harness.addUser("joy")
        harness.open(3)
        _ = try await harness.login(3, "joy")
        #expect(try await admin(harness, 3, "tokens.list")["code"] as? String == "forbidden")
        #expect(try await admin(harness, 3, "tokens.create", ["integration": "ehr", "scopes": ["org:read"]])["code"] as? String == "forbidden")
        await harness.stop()
    }
}
