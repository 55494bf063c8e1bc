import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Testing

@Suite("auth stage: second factor, lockout, allow-list, audit")
struct SecondFactorTests {
    @Test func aHIPAAAccountWithoutASecondFactorCanOnlyEnrol() async throws {
        let hub = try StageHarness()
        let (secret, uri) = try expectEnroll(await hub.rawLogin(1, code: nil))
        #expect(uri.hasPrefix("otpauth://totp/Riverside Clinic:joy"))
        // Without a code nothing else works: no session was bound.
        #expect(await hub.run(.rooms(), from: 1).errorCode == .unauthenticated)
        // The secret is stored sealed, never in the clear.
        let pending = try #require(try await hub.world.users.user(org: hub.org.id, name: "joy")?.secondFactor.pendingSecret)
        #expect(pending.keyID == "test")
        // Asking again hands out the same secret until enrolment completes.
        let again = try expectEnroll(await hub.rawLogin(1, code: nil)).secret
        #expect(again == secret)

        #expect(await hub.rawLogin(1, code: "000000").errorCode == .authFailed)
        hub.world.clock.advance(by: 2)
        let bytes = secret.split(separator: ",").compactMap { UInt8($0) }
        let code = PlainCredentials.code(secret: bytes, at: hub.world.clock.now)
        guard case .session(_, "joy", .staff, _, let recovery, _, _) = await hub.rawLogin(1, code: code) else {
            Issue.record("enrolment with a valid code failed")
            return
        }
        #expect(recovery.count == 10)
        #expect(Set(recovery).count == 10)
        #expect(hub.world.audit.actions.contains("enrolment.started"))
        #expect(hub.world.audit.actions.contains("enrolment.completed"))
        #expect(hub.world.audit.actions.last == "login.success")
    }

    @Test func aCodeIsAcceptedOnceOnly() async throws {
        let hub = try StageHarness()
        #expect(await hub.login(1).errorCode == nil)
        let secret = try #require(hub.secrets["joy"])
        // Replaying a code from a step already used is refused, even with the right password.
        let used = PlainCredentials.code(secret: secret, at: hub.world.clock.now)
        #expect(await hub.rawLogin(2, code: used).errorCode == .authFailed)
        #expect(hub.world.audit.events.last?.detail.hasPrefix("reason=code_replayed") == true)
        hub.world.clock.advance(by: 60)
        #expect(await hub.login(3).errorCode == nil)
    }

    @Test func recoveryCodesWorkOnceEach() async throws {
        let hub = try StageHarness()
        _ = await hub.login(1)
        let codes = try #require(hub.recoveryCodes["joy"])
        #expect(await hub.rawLogin(2, code: codes[3].uppercased()).errorCode == nil)
        #expect(hub.world.audit.actions.contains("recovery_code.used"))
        hub.world.clock.advance(by: 2)
        #expect(await hub.rawLogin(3, code: codes[3]).errorCode == .authFailed)
        hub.world.clock.advance(by: 2)
        #expect(await hub.rawLogin(4, code: codes[4]).errorCode == nil)
    }

    @Test func failuresBackOffThenLockAndTheLockEndsAfterItsTime() async throws {
        let hub = try StageHarness(StageHarness.hipaaConfig.replacingOccurrences(of: "stage auth visitors=on", with: "stage auth visitors=on lockout=3 lockout_time=10m"))
        _ = await hub.login(9)  // enrol
        hub.world.clock.advance(by: 60)
        #expect(await hub.rawLogin(1, password: "wrong-one", code: nil).errorCode == .authFailed)
        // Within the back-off even the right credentials are refused, and that is not counted.
        #expect(await hub.login(2).errorCode == .authFailed)
        #expect(try await hub.world.users.user(org: hub.org.id, name: "joy")?.throttle.failures == 1)
        hub.world.clock.advance(by: 1.5)
        #expect(await hub.rawLogin(1, password: "wrong-two", code: nil).errorCode == .authFailed)
        hub.world.clock.advance(by: 2.5)
        #expect(await hub.rawLogin(1, password: "wrong-three", code: nil).errorCode == .authFailed)
        #expect(hub.world.audit.actions.contains("account.locked"))
        hub.world.clock.advance(by: 5 * 60)
        #expect(await hub.login(3).errorCode == .authFailed)
        #expect(hub.world.audit.events.last?.detail == "reason=locked")
        hub.world.clock.advance(by: 6 * 60)
        #expect(await hub.login(4).errorCode == nil)
        #expect(try await hub.world.users.user(org: hub.org.id, name: "joy")?.throttle == LoginThrottle())
    }

    @Test func everyFailureLooksTheSameOnTheWireAndNoSecretReachesTheAudit() async throws {
        let hub = try StageHarness()
        hub.world.users.add(StaffUser(org: hub.org.id, name: "off", role: .staff, passwordHash: PlainCredentials.hash("off-password"), disabled: true))
        var replies: [ServerFrame] = []
        replies.append(await hub.rawLogin(1, password: "secret-wrong-password", code: nil))
        replies.append(await hub.rawLogin(2, user: "nobody", password: "secret-wrong-password", code: nil))
        replies.append(await hub.rawLogin(3, user: "off", password: "off-password", code: nil))
        let errors = replies.compactMap { reply -> PipelineError? in
            if case .error(_, let error) = reply { error } else { nil }
        }
        #expect(errors.count == 3)
        #expect(Set(errors).count == 1)
        #expect(errors.first == .authFailed)
        for event in hub.world.audit.events {
            #expect(!event.detail.contains("secret") && !event.target.contains("secret") && !event.actor.contains("secret"))
        }
        #expect(hub.world.audit.events.map(\.detail) == ["reason=password failures=1", "reason=unknown_user", "reason=disabled"])
    }

    @Test func staffMayLogInOnlyFromAllowedAddresses() async throws {
        let config = StageHarness.wellnessConfig.replacingOccurrences(of: "stage auth", with: "stage auth allow=10.0.0.0/8,2001:db8::/32")
        let hub = try StageHarness(config)
        // The harness connects from 127.0.0.1.
        #expect(await hub.login(1).errorCode == .authFailed)
        #expect(hub.world.audit.events.last?.detail == "reason=address")
        let open = try StageHarness(StageHarness.wellnessConfig.replacingOccurrences(of: "stage auth", with: "stage auth allow=127.0.0.0/8"))
        #expect(await open.login(1).errorCode == nil)
    }

    @Test func optionalAndOffFollowTheConfiguration() async throws {
        let optional = try StageHarness(StageHarness.wellnessConfig.replacingOccurrences(of: "stage auth", with: "stage auth twofactor=optional"))
        guard case .session = await optional.rawLogin(1, code: nil) else {
            Issue.record("optional 2FA demanded a code from an account without one")
            return
        }
        let required = try StageHarness(StageHarness.wellnessConfig.replacingOccurrences(of: "stage auth", with: "stage auth twofactor=required"))
        guard case .enroll = await required.rawLogin(1, code: nil) else {
            Issue.record("required 2FA did not ask for enrolment")
            return
        }
    }

    @Test func logoutIsAudited() async throws {
        let hub = try StageHarness()
        _ = await hub.login(1)
        #expect(await hub.run(.logout, from: 1, id: "o") == .loggedOut(id: "o"))
        #expect(hub.world.audit.actions.last == "logout")
        #expect(await hub.run(.rooms(), from: 1).errorCode == .unauthenticated)
    }

    @Test func sessionExpiryIsAudited() async throws {
        let hub = try StageHarness()
        _ = await hub.login(1)
        await hub.pipeline.tick(at: hub.world.clock.now.addingTimeInterval(11 * 60))
        #expect(hub.world.audit.events.last.map { "\($0.action) \($0.actor) \($0.detail)" } == "session.expired joy reason=idle")
    }
}

@Suite("auth stage: live sessions follow account changes")
struct RevocationTests {
    @Test func disablingAnAccountEndsItsLiveSessionWithinARevalidationRound() async throws {
        let hub = try StageHarness(staff: [("joy", .staff, "joy-password"), ("max", .staff, "max-password")])
        _ = await hub.login(1)
        _ = await hub.login(2, user: "max", password: "max-password")
        await hub.pipeline.tick(at: hub.world.clock.now)
        #expect(hub.world.events.events.isEmpty)

        hub.world.users.replace(org: hub.org.id, name: "joy") { $0.disabled = true }
        hub.world.clock.advance(by: 6)
        await hub.pipeline.tick(at: hub.world.clock.now)
        guard case .sessionExpired(let session, .revoked)? = hub.world.events.events.first else {
            Issue.record("no revocation: \(hub.world.events.events)")
            return
        }
        #expect(session.principal == .staff(user: "joy", role: .staff))
        #expect(hub.world.audit.events.last.map { "\($0.action) \($0.target) \($0.detail)" } == "session.revoked joy reason=disabled")
        // The other account is untouched.
        #expect(hub.world.sessions.sessions(of: hub.org.id).map(\.principal) == [.staff(user: "max", role: .staff)])
    }

    @Test func aRoleChangeOrASecondFactorResetAlsoEndsTheSession() async throws {
        let hub = try StageHarness(staff: [("joy", .staff, "joy-password"), ("max", .staff, "max-password")])
        _ = await hub.login(1)
        _ = await hub.login(2, user: "max", password: "max-password")
        hub.world.users.replace(org: hub.org.id, name: "joy") { $0.role = .admin }
        hub.world.users.replace(org: hub.org.id, name: "max") { $0.secondFactor = SecondFactor() }
        hub.world.clock.advance(by: 6)
        await hub.pipeline.tick(at: hub.world.clock.now)
        let details = Set(hub.world.audit.events.filter { $0.action == "session.revoked" }.map { "\($0.target) \($0.detail)" })
        #expect(details == ["joy reason=role_changed", "max reason=2fa_reset"])
        #expect(hub.world.sessions.sessions(of: hub.org.id).isEmpty)
    }
}
