import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Testing

/// A HIPAA organisation whose auth stage names an SSO provider, over the in-memory doubles.
private func ssoHarness(_ extra: String = "accounts=create claim_role=groups admin_group=admins") throws -> StageHarness {
    let secret = FileManager.default.temporaryDirectory.appendingPathComponent("carehub-sso-\(UUID().uuidString)")
    try Data("client-secret\n".utf8).write(to: secret)
    try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: secret.path)
    let config = StageHarness.hipaaConfig
        .replacingOccurrences(of: "stage auth visitors=on", with: "sso idp issuer=https://idp.example.org client_id=carehub client_secret_file=\(secret.path) \(extra)\nstage auth visitors=on sso=idp")
    return try StageHarness(config)
}

private extension StageHarness {
    /// A verified sign-in of `user` held under a fresh ticket, as the callback page makes one.
    func ticket(_ user: String, amr: [String] = ["pwd", "otp"], roles: [String] = [], provider: String = "idp", org: OrgID? = nil) -> String {
        let ticket = UUID().uuidString
        let assertion = SSOAssertion(
            org: org ?? self.org.id, identity: SSOIdentity(provider: provider, issuer: "https://idp.example.org", subject: "sub-\(user)", sessionID: "sid-1"),
            user: user, roles: roles, amr: amr, acr: nil, displayName: "Display \(user)")
        environment.local.ssoTickets.insert(ticket, assertion, at: world.clock.now)
        return ticket
    }

    func sso(_ connection: Int, _ ticket: String, code: String? = nil) async -> ServerFrame {
        await run(.sso(org: org.id, ticket: ticket, totp: code), from: connection)
    }
}

private extension ServerFrame {
    /// `user:role` of a session reply, nil for anything else.
    var sessionOf: String? {
        if case .session(_, let user, let role, _, _, _, _) = self { return "\(user):\(role.rawValue)" }
        return nil
    }

    var isEnrolment: Bool {
        if case .enroll = self { return true }
        return false
    }
}

@Suite("auth stage: single sign-on")
struct SSOAuthStageTests {
    @Test func aSecondFactorAtTheProviderMakesATwoFactorSessionAndAnAccountOnFirstLogin() async throws {
        let hub = try ssoHarness()
        let ticket = hub.ticket("dr.new", roles: ["staff", "admins"])
        // A member of admin_group is an admin.
        #expect(await hub.sso(1, ticket).sessionOf == "dr.new:admin")
        let session = try #require(hub.world.sessions.sessions(of: hub.org.id).first)
        #expect(session.secondFactor)
        #expect(session.sso?.subject == "sub-dr.new" && session.sso?.sessionID == "sid-1")
        let account = try #require(try await hub.world.users.user(org: hub.org.id, name: "dr.new"))
        #expect(account.passwordHash == StaffUser.noPassword && account.displayName == "Display dr.new")
        let created = try #require(hub.world.users.auditEvents.first)
        #expect(created.action == "user.created" && created.actor == "sso:idp" && created.detail.hasPrefix("role=admin via=sso provider=idp"))
        let login = try #require(hub.world.audit.events.last)
        #expect(login.action == "login.success" && login.detail.contains("second_factor=provider") && login.detail.contains("subject=sub-dr.new"))
        // The ticket was used up.
        #expect(await hub.sso(2, ticket).errorCode == .authFailed)
        #expect(hub.world.audit.events.last?.detail == "reason=sso_ticket")
        // The account has no authenticator of its own, and needs none: the live session stays
        // through the auth stage's checks of accounts.
        hub.world.clock.advance(by: 30)
        for stage in hub.pipeline.stages { await stage.tick(at: hub.world.clock.now) }
        #expect(hub.world.sessions.sessions(of: hub.org.id).count == 1)
        #expect(!hub.world.audit.actions.contains("session.revoked"))
    }

    @Test func withoutTheGroupANewAccountIsStaff() async throws {
        let hub = try ssoHarness()
        #expect(await hub.sso(1, hub.ticket("new.nurse", roles: ["staff"])).sessionOf == "new.nurse:staff")
    }

    @Test func oneFactorAtTheProviderAsksForTheAccountsOwnCodeAndKeepsTheTicket() async throws {
        let hub = try ssoHarness()
        #expect(await hub.login(9).errorCode == nil)  // joy enrols her authenticator with her password
        hub.world.clock.advance(by: 60)
        let ticket = hub.ticket("joy", amr: ["pwd"])
        #expect(await hub.sso(1, ticket).errorCode == .codeRequired)
        #expect(await hub.sso(1, ticket, code: "000000").errorCode == .authFailed)
        #expect(hub.world.audit.events.last?.detail.hasPrefix("reason=code failures=1") == true)
        #expect(await hub.sso(1, ticket, code: hub.nextCode("joy")).sessionOf == "joy:staff")
        let login = try #require(hub.world.audit.events.last)
        #expect(login.detail.hasPrefix("factors=2 via=sso") && !login.detail.contains("second_factor=provider"))
    }

    @Test func anAccountNewToAHIPAAOrganisationWithOneFactorEnrols() async throws {
        let hub = try ssoHarness()
        let reply = await hub.sso(1, hub.ticket("new.hire", amr: ["pwd"]))
        #expect(reply.isEnrolment)
        #expect(hub.world.sessions.sessions(of: hub.org.id).isEmpty)
    }

    @Test func disabledUnknownAndForeignAreRefused() async throws {
        let hub = try ssoHarness("accounts=existing")
        hub.world.users.replace(org: hub.org.id, name: "joy") { $0.disabled = true }
        let disabled = hub.ticket("joy")
        #expect(await hub.sso(1, disabled).errorCode == .authFailed)
        #expect(hub.world.audit.events.last?.detail.hasPrefix("reason=disabled via=sso provider=idp issuer=https://idp.example.org subject=sub-joy") == true)
        // A refusal uses the ticket up.
        #expect(hub.environment.local.ssoTickets.assertion(disabled, org: hub.org.id, at: hub.world.clock.now) == nil)

        #expect(await hub.sso(2, hub.ticket("stranger")).errorCode == .authFailed)
        #expect(hub.world.audit.events.last?.detail.hasPrefix("reason=sso_no_account") == true)
        #expect(try await hub.world.users.user(org: hub.org.id, name: "stranger") == nil)

        #expect(await hub.sso(3, hub.ticket("joy", provider: "other")).errorCode == .authFailed)
        #expect(await hub.sso(4, hub.ticket("joy", org: OrgID("elsewhere"))).errorCode == .authFailed)
        #expect(hub.world.sessions.sessions(of: hub.org.id).isEmpty)
    }

    @Test func aPendingDeviceSignInSaysSoAndAnOrganisationWithoutSSORefuses() async throws {
        let hub = try ssoHarness()
        hub.environment.local.ssoTickets.reserve("pending", org: hub.org.id, until: hub.world.clock.now.addingTimeInterval(60), at: hub.world.clock.now)
        #expect(await hub.sso(1, "pending").errorCode == .signInPending)
        // A console asking every second for minutes is waiting, not guessing: no login limit.
        var answers: Set<ErrorCode?> = []
        for _ in 0..<(HubLimits.standard.loginsPerAddressPerMinute * 3) { answers.insert(await hub.sso(1, "pending").errorCode) }
        #expect(answers == [.signInPending])
        // Without a device sign-in service the hub says so instead of hanging.
        #expect(await hub.run(.ssoDevice(org: hub.org.id), from: 2).errorCode == .unavailable)

        let plain = try StageHarness()
        #expect(await plain.run(.sso(org: plain.org.id, ticket: "t", totp: nil), from: 1).errorCode == .forbidden)
        #expect(await plain.run(.ssoDevice(org: plain.org.id), from: 1).errorCode == .forbidden)
    }
}
