import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Testing

@Suite("auth stage")
struct AuthStageTests {
    @Test func staffLogInWithTheRightPasswordOnly() async throws {
        let hub = try StageHarness()
        #expect(await hub.login(1, password: "wrong").errorCode == .authFailed)
        #expect(await hub.login(1, user: "nobody").errorCode == .authFailed)
        hub.world.clock.advance(by: 2)  // past the back-off after one failure
        guard case .session(_, let user, let role, let idle, _, _, _) = await hub.login(1) else {
            Issue.record("login refused")
            return
        }
        #expect(user == "joy" && role == .staff && idle == 600)
        #expect(await hub.login(1).errorCode == .alreadyAuthenticated)
    }

    @Test func disabledAccountsCannotLogIn() async throws {
        let hub = try StageHarness(staff: [])
        hub.world.users.add(StaffUser(org: hub.org.id, name: "gone", role: .staff, passwordHash: PlainCredentials.hash("pw-pw-pw-pw-pw"), disabled: true))
        #expect(await hub.login(1, user: "gone", password: "pw-pw-pw-pw-pw").errorCode == .authFailed)
    }

    @Test func framesBeforeAuthenticationAreRefused() async throws {
        let hub = try StageHarness()
        #expect(await hub.run(.rooms(), from: 1).errorCode == .unauthenticated)
        #expect(await hub.run(.send(room: ConversationID("c_x"), text: "hi"), from: 1).errorCode == .unauthenticated)
    }

    @Test func visitorsReachOnlyTheirOwnRoomAndCanResumeWithTheirToken() async throws {
        let hub = try StageHarness()
        let mine = try await hub.visitor(1)
        let theirs = try await hub.visitor(2)
        #expect(mine != theirs)
        #expect(await hub.run(.send(room: theirs, text: "peek"), from: 1).errorCode == .forbidden)
        #expect(await hub.run(.subscribe(room: mine), from: 1).errorCode == .forbidden)
        #expect(await hub.run(.rooms(), from: 1).errorCode == .forbidden)

        let token = try expectWelcome(await hub.run(.hello(org: hub.org.id, token: nil), from: 3)).token
        let resumed = try expectWelcome(await hub.run(.hello(org: hub.org.id, token: token), from: 4)).room
        #expect(resumed.rawValue.hasPrefix("c_"))
        #expect(await hub.run(.hello(org: hub.org.id, token: "forged"), from: 5).errorCode == .authFailed)
    }

    @Test func visitorsOffRefusesAnonymousChats() async throws {
        let hub = try StageHarness(StageHarness.wellnessConfig.replacingOccurrences(of: "stage auth", with: "stage auth visitors=off"))
        #expect(await hub.run(.hello(org: hub.org.id, token: nil), from: 1).errorCode == .forbidden)
    }

    @Test func visitorTokensStopWorkingAfterVisitorIdle() async throws {
        let hub = try StageHarness()
        let (room, token) = try expectWelcome(await hub.run(.hello(org: hub.org.id, token: nil), from: 1))
        _ = await hub.run(.send(room: room, text: "hello"), from: 1)
        hub.world.clock.advance(by: 29 * 60)
        let resumed = try expectWelcome(await hub.run(.hello(org: hub.org.id, token: token), from: 2)).room
        #expect(resumed == room)
        hub.world.clock.advance(by: 31 * 60)
        #expect(await hub.run(.hello(org: hub.org.id, token: token), from: 3).errorCode == .authFailed)
    }

    @Test func staffCannotReachAnotherOrganisationsRoom() async throws {
        let clinic = try StageHarness()
        let studio = try StageHarness(StageHarness.wellnessConfig)
        let room = try await studio.visitor(1)
        _ = await clinic.login(2)
        // The clinic's stores do not know the studio's room.
        #expect(await clinic.run(.subscribe(room: room), from: 2).errorCode == .notFound)
    }
}

@Suite("idle stage")
struct IdleStageTests {
    @Test func anIdleStaffSessionExpiresAndMustLogInAgain() async throws {
        let hub = try StageHarness()
        _ = await hub.login(1)
        let room = try await hub.visitor(2)
        #expect(await hub.run(.subscribe(room: room), from: 1).errorCode == nil)
        hub.world.clock.advance(by: 9 * 60)
        #expect(await hub.run(.send(room: room, text: "still here"), from: 1).errorCode == nil)
        hub.world.clock.advance(by: 10 * 60 + 1)
        #expect(await hub.run(.send(room: room, text: "too late"), from: 1).errorCode == .sessionExpired)
        #expect(hub.world.events.events.count == 1)
        // The session is gone for good: the connection stays refused until a new login, and
        // the expiry is reported once.
        #expect(await hub.run(.rooms(), from: 1).errorCode == .sessionExpired)
        #expect(hub.world.events.events.count == 1)
        #expect(!hub.world.sessions.sessions(of: hub.org.id).contains { $0.principal.isStaff })
    }

    @Test func readingRoomListsDoesNotKeepASessionAlive() async throws {
        let hub = try StageHarness()
        _ = await hub.login(1)
        for _ in 0..<3 {
            hub.world.clock.advance(by: 4 * 60)
            _ = await hub.run(.rooms(), from: 1)
        }
        #expect(await hub.run(.rooms(), from: 1).errorCode == .sessionExpired)
    }

    @Test func theTickExpiresSessionsWithoutAnyTraffic() async throws {
        let hub = try StageHarness()
        _ = await hub.login(1)
        await hub.pipeline.tick(at: hub.world.clock.now.addingTimeInterval(5 * 60))
        #expect(hub.world.events.events.isEmpty)
        await hub.pipeline.tick(at: hub.world.clock.now.addingTimeInterval(11 * 60))
        guard case .sessionExpired(let session, let why)? = hub.world.events.events.first else {
            Issue.record("no expiry event")
            return
        }
        #expect(session.principal == .staff(user: "joy", role: .staff) && why == .idle)
        #expect(hub.world.sessions.sessions(of: hub.org.id).isEmpty)
    }

    @Test func sessionsEndAtTheirLifetimeEvenWhenBusy() async throws {
        let hub = try StageHarness()
        _ = await hub.login(1)
        let room = try await hub.visitor(2)
        for minute in stride(from: 5, through: 60, by: 5) {
            hub.world.clock.advance(by: 5 * 60)
            let reply = await hub.run(.send(room: room, text: "minute \(minute)"), from: 1)
            if minute < 60 { #expect(reply.errorCode == nil) } else { #expect(reply.errorCode == .sessionExpired) }
        }
    }
}

@Suite("encrypt and store stages")
struct EncryptStoreTests {
    @Test func aNewConversationsKeyIsMadeWhenItStarts() async throws {
        let hub = try StageHarness()
        let room = try await hub.visitor(1)
        #expect(hub.world.cipher.prepared == [.conversation(hub.org.id, room)])
        let other = try await hub.visitor(2)
        #expect(hub.world.cipher.prepared == [.conversation(hub.org.id, room), .conversation(hub.org.id, other)])
    }

    @Test func textIsSealedBeforeStorageAndOpenedForReaders() async throws {
        let hub = try StageHarness()
        let room = try await hub.visitor(1)
        guard case .ack(_, _, let seq, _) = await hub.run(.send(room: room, text: "my chest hurts"), from: 1, id: "m") else {
            Issue.record("no ack")
            return
        }
        let stored = try #require(hub.world.messages.all.first)
        #expect(stored.seq == seq)
        guard case .sealed(let sealed) = stored.body else {
            Issue.record("stored in the clear: \(stored.body)")
            return
        }
        #expect(!String(decoding: sealed.bytes, as: UTF8.self).contains("chest"))
        #expect(hub.world.cipher.sealCount == 1)

        _ = await hub.login(2)
        let history = try expectSubscribed(await hub.run(.subscribe(room: room), from: 2)).history
        #expect(history.map(\.text) == ["my chest hurts"])
    }

    @Test func aSealedMessageMovedToAnotherRoomOrSequenceDoesNotOpen() async throws {
        let hub = try StageHarness()
        let room = try await hub.visitor(1)
        _ = await hub.run(.send(room: room, text: "secret"), from: 1)
        let original = try #require(hub.world.messages.all.first)
        // Replay the sealed body under another sequence number, as a tampered database would.
        try await hub.world.messages.append(StoredMessage(conversation: room, seq: 99, sender: original.sender, at: original.at, body: original.body))
        _ = await hub.login(2)
        let history = try expectSubscribed(await hub.run(.subscribe(room: room), from: 2)).history
        #expect(history.map(\.text) == ["secret", nil])
    }

    @Test func outsideHIPAAModeTextIsStoredAsIs() async throws {
        let hub = try StageHarness(StageHarness.wellnessConfig)
        let room = try await hub.visitor(1)
        for text in ["one", "two", "three"] { _ = await hub.run(.send(room: room, text: text), from: 1) }
        #expect(hub.world.messages.all.map(\.body) == [.plain("one"), .plain("two"), .plain("three")])
        // history=2: a reader gets the latest two.
        _ = await hub.login(2)
        let history = try expectSubscribed(await hub.run(.subscribe(room: room), from: 2)).history
        #expect(history.map(\.text) == ["two", "three"])
        #expect(history.map(\.seq) == [2, 3])
    }

    @Test func anEndedConversationTakesNoMoreMessages() async throws {
        let hub = try StageHarness(StageHarness.wellnessConfig)
        let room = try await hub.visitor(1)
        _ = await hub.login(2)
        #expect(await hub.run(.end(room: room), from: 2, id: "e") == .ended(id: "e", room: room))
        #expect(await hub.run(.send(room: room, text: "hello?"), from: 1).errorCode == .conversationEnded)
        #expect(try await hub.world.conversations.conversation(room)?.hasEnded == true)
    }
}

@Suite("purge stage")
struct PurgeStageTests {
    @Test func endingAConversationDeletesItsTranscriptAndOnlyThat() async throws {
        let hub = try StageHarness()
        let ending = try await hub.visitor(1)
        let other = try await hub.visitor(2)
        _ = await hub.run(.send(room: ending, text: "a"), from: 1)
        _ = await hub.run(.send(room: other, text: "b"), from: 2)
        _ = await hub.login(3)
        _ = await hub.run(.subscribe(room: ending), from: 3)
        _ = await hub.run(.end(room: ending), from: 3)
        #expect(hub.world.messages.all.map(\.conversation) == [other])
        // Everyone in the room heard about the end before the transcript went.
        #expect(hub.delivered(to: 1).contains(.ended(id: nil, room: ending)))
    }

    @Test func withoutThePurgeStageTheTranscriptStays() async throws {
        let hub = try StageHarness(StageHarness.wellnessConfig)
        let room = try await hub.visitor(1)
        _ = await hub.run(.send(room: room, text: "kept"), from: 1)
        _ = await hub.login(2)
        _ = await hub.run(.end(room: room), from: 2)
        #expect(hub.world.messages.all.count == 1)
    }
}

@Suite("fanout stage")
struct FanoutStageTests {
    @Test func messagesReachOnlyTheRoomsAuthorisedSubscribers() async throws {
        let hub = try StageHarness(staff: [("joy", .staff, "joy-password"), ("max", .staff, "max-password")])
        let room = try await hub.visitor(1)
        let otherRoom = try await hub.visitor(2)
        _ = await hub.login(3)
        _ = await hub.login(4, user: "max", password: "max-password")
        _ = await hub.run(.subscribe(room: room), from: 3)
        _ = await hub.run(.subscribe(room: otherRoom), from: 4)

        _ = await hub.run(.send(room: room, text: "hello nurse"), from: 1)
        let toJoy = hub.delivered(to: 3).filter { if case .message = $0 { true } else { false } }
        #expect(toJoy.count == 1)
        if case .message(_, _, let from, let text, _, _, _)? = toJoy.first { #expect(from == "visitor" && text == "hello nurse") }
        #expect(!hub.delivered(to: 4).contains { if case .message = $0 { true } else { false } })
        #expect(!hub.delivered(to: 2).contains { if case .message = $0 { true } else { false } })
        // The sender gets an ack, not an echo.
        #expect(!hub.delivered(to: 1).contains { if case .message = $0 { true } else { false } })

        _ = await hub.run(.send(room: room, text: "hello patient"), from: 3)
        #expect(hub.delivered(to: 1).contains { if case .message(_, _, "joy", "hello patient", _, "joy", _) = $0 { true } else { false } })
    }

    @Test func inHIPAAModeTheDeliveryRecordIsCommittedWithTheMessageOnce() async throws {
        let hub = try StageHarness()
        let room = try await hub.visitor(1)
        _ = await hub.login(2)
        _ = await hub.run(.subscribe(room: room), from: 2)
        let reply = await hub.run(.send(room: room, text: "chest pain"), from: 1, id: "m1")
        guard case .ack(_, _, let seq, _) = reply else {
            Issue.record("no ack")
            return
        }
        let records = hub.world.audit.events.filter { $0.action == "phi.delivered" }
        #expect(records.map(\.detail) == ["seq=\(seq) readers=joy"])
        #expect(records.first?.target == room.rawValue && records.first?.actor == "visitor")
        #expect(!records.contains { $0.detail.contains("chest") })
        #expect(hub.delivered(to: 2).contains { if case .message(_, _, _, "chest pain", _, _, _) = $0 { true } else { false } })
    }

    @Test func aReaderTheStoreStageDidNotRecordIsRecordedBeforeFanOutSendsToIt() async throws {
        let hub = try StageHarness()
        let room = try await hub.visitor(1)
        _ = await hub.login(2)
        _ = await hub.run(.subscribe(room: room), from: 2)
        let visitor = try #require(hub.world.sessions.sessions(of: hub.org.id).first { !$0.principal.isStaff })
        let fanout = try #require(hub.pipeline.stages.last)
        // As if joy joined between the store stage's commit and fan-out: released to nobody yet.
        var request = hub.world.request(.send(room: room, text: "late"), connection: ConnectionID(1), session: visitor)
        request.conversation = try await hub.world.conversations.conversation(room)
        request.seq = 7
        request.releasedTo = []
        _ = try await fanout.handle(request) { _ in Outcome() }
        #expect(hub.world.audit.events.filter { $0.action == "phi.delivered" }.map(\.detail) == ["seq=7 readers=joy"])
        #expect(hub.delivered(to: 2).contains { if case .message(_, 7, _, "late", _, _, _) = $0 { true } else { false } })
    }

    @Test func aSubscriberWhoseSessionEndedGetsNothing() async throws {
        let hub = try StageHarness()
        let room = try await hub.visitor(1)
        _ = await hub.login(2)
        _ = await hub.run(.subscribe(room: room), from: 2)
        await hub.pipeline.tick(at: hub.world.clock.now.addingTimeInterval(11 * 60))
        _ = await hub.run(.send(room: room, text: "anyone?"), from: 1)
        #expect(!hub.delivered(to: 2).contains { if case .message = $0 { true } else { false } })
    }

    @Test func staffAreToldOfNewRooms() async throws {
        let hub = try StageHarness()
        _ = await hub.login(2)
        let room = try await hub.visitor(1)
        #expect(hub.delivered(to: 2).contains { if case .roomOpened(room, _) = $0 { true } else { false } })
    }

    @Test func hipaaNotificationsCarryNoMessageText() async throws {
        let hub = try StageHarness()
        let room = try await hub.visitor(1)
        _ = await hub.run(.send(room: room, text: "CANARY rash on my arm"), from: 1)
        _ = await hub.run(.send(room: room, text: "CANARY still there"), from: 1)
        let texts = hub.world.notifier.notifications.map { NotificationTemplate.render($0, org: hub.org, link: "/staff.html#room=\($0.conversation.rawValue)").json }
        #expect(hub.world.notifier.notifications.allSatisfy { $0.preview == nil && $0.from == nil })
        #expect(hub.world.notifier.integrations == [["pager"], ["pager"]])
        #expect(texts.count == 2)
        #expect(texts.allSatisfy { !$0.contains("CANARY") && !$0.contains("rash") })
        #expect(texts.last?.contains("2 unread messages") == true)
        #expect(texts.last?.contains("/staff.html#room=\(room.rawValue)") == true)
    }

    @Test func aChatRaisesWebhookEventsThatCarryIdsOnly() async throws {
        let hub = try StageHarness()
        let hook = Webhook(
            id: "wh_0123456789abcdef", org: hub.org.id, integration: "ehr", url: "https://hooks.example.org/in", events: WebhookEventKind.allCases,
            createdAt: hub.world.clock.now)
        #expect(try await hub.world.webhooks.create(hook, limit: 10, recording: []))
        let room = try await hub.visitor(1)
        _ = await hub.run(.send(room: room, text: "CANARY rash on my arm"), from: 1)
        _ = await hub.login(2)
        _ = await hub.run(.end(room: room), from: 2)
        let raised = hub.world.webhooks.raised.map(\.event)
        #expect(raised.map(\.kind) == [.conversationOpened, .messageCreated, .conversationEnded])
        #expect(raised.allSatisfy { $0.conversation == room && $0.org == hub.org.id })
        #expect(raised.map(\.seq) == [nil, 1, nil])
        #expect(raised.allSatisfy { !$0.json.contains("CANARY") && !$0.json.contains("rash") })
    }

    @Test func theUnreadCountOfNotificationsCarriesOnAcrossAReload() async throws {
        let hub = try StageHarness()
        let room = try await hub.visitor(1)
        _ = await hub.run(.send(room: room, text: "one"), from: 1)
        _ = await hub.run(.send(room: room, text: "two"), from: 1)
        hub.reload()
        _ = await hub.run(.send(room: room, text: "three"), from: 1)
        #expect(hub.world.notifier.notifications.map(\.unread) == [1, 2, 3])
    }

    @Test func noNotificationWhileStaffAreWatching() async throws {
        let hub = try StageHarness()
        let room = try await hub.visitor(1)
        _ = await hub.login(2)
        _ = await hub.run(.subscribe(room: room), from: 2)
        _ = await hub.run(.send(room: room, text: "seen live"), from: 1)
        #expect(hub.world.notifier.notifications.isEmpty)
    }

    @Test func previewsOutsideHIPAAAreCutToTheConfiguredLength() async throws {
        let hub = try StageHarness(StageHarness.wellnessConfig)
        let room = try await hub.visitor(1)
        _ = await hub.run(.send(room: room, text: "Can I move my yoga class to Friday?"), from: 1)
        let notification = try #require(hub.world.notifier.notifications.first)
        let text = NotificationTemplate.render(notification, org: hub.org, link: "/x").text
        #expect(text.contains("\"Can I move…\""))
        #expect(!text.contains("yoga"))
    }
}

@Suite("typing indicators")
struct TypingTests {
    @Test func typingIsRelayedToTheRoomNotStoredAndCountsAsActivity() async throws {
        let hub = try StageHarness()
        let room = try await hub.visitor(1)
        _ = await hub.login(2)
        _ = await hub.run(.subscribe(room: room), from: 2)
        let other = try await hub.visitor(3)

        let reply = await hub.run(.typing(room: room), from: 1)
        #expect(reply == .error(id: nil, error: PipelineError(.internal, "no reply")))  // the harness's marker for "no reply frame"
        #expect(hub.delivered(to: 2).contains(.typing(room: room, from: "visitor")))
        #expect(!hub.delivered(to: 3).contains { if case .typing = $0 { true } else { false } })
        #expect(hub.world.messages.all.isEmpty)
        #expect(await hub.run(.typing(room: other), from: 1).errorCode == .forbidden)

        // Staff typing keeps the session alive past what the idle timeout would allow.
        for _ in 0..<3 {
            hub.world.clock.advance(by: 8 * 60)
            _ = await hub.run(.typing(room: room), from: 2)
        }
        #expect(await hub.run(.send(room: room, text: "still here"), from: 2).errorCode == nil)
        #expect(hub.delivered(to: 1).contains(.typing(room: room, from: "joy", fromName: "joy")))
    }
}

@Suite("pre-chat form")
struct PreChatTests {
    @Test func theFormIsSealedInHIPAAModeShownToStaffAndPurgedWithTheChat() async throws {
        let hub = try StageHarness()
        let profile = VisitorProfile(fields: ["name": "Ada Lovelace", "email": "ada@example.org"])
        let room = try expectWelcome(await hub.run(.hello(org: hub.org.id, token: nil, profile: profile), from: 1)).room
        guard case .sealed(let sealed)? = try await hub.world.conversations.profile(of: room) else {
            Issue.record("profile not stored sealed")
            return
        }
        #expect(!String(decoding: sealed.bytes, as: UTF8.self).contains("Ada"))
        _ = await hub.login(2)
        let visitor = try expectSubscribed(await hub.run(.subscribe(room: room), from: 2)).visitor
        #expect(visitor == profile)
        _ = await hub.run(.end(room: room), from: 2)
        #expect(try await hub.world.conversations.profile(of: room) == nil)
        #expect(hub.world.cipher.isShredded(.conversation(hub.org.id, room)))
    }

    @Test func outsideHIPAAModeTheFormIsStoredAsIs() async throws {
        let hub = try StageHarness(StageHarness.wellnessConfig)
        let profile = VisitorProfile(fields: ["reason": "reschedule"])
        let room = try expectWelcome(await hub.run(.hello(org: hub.org.id, token: nil, profile: profile), from: 1)).room
        #expect(try await hub.world.conversations.profile(of: room) == .plain(#"{"reason":"reschedule"}"#))
    }
}

@Suite("retention")
struct RetentionTests {
    @Test func conversationsPastTheRetentionPeriodArePurgedEvenIfNeverEnded() async throws {
        let hub = try StageHarness(StageHarness.hipaaConfig.replacingOccurrences(of: "stage purge on=end", with: "stage purge on=end retain=1h"))
        let old = try await hub.visitor(1)
        _ = await hub.run(.send(room: old, text: "old news"), from: 1)
        hub.world.clock.advance(by: 50 * 60)
        let recent = try await hub.visitor(2)
        _ = await hub.run(.send(room: recent, text: "fresh"), from: 2)
        // Nothing is old enough yet.
        await hub.pipeline.tick(at: hub.world.clock.now)
        #expect(hub.world.messages.all.count == 2)

        hub.world.clock.advance(by: 15 * 60)
        await hub.pipeline.tick(at: hub.world.clock.now)
        #expect(hub.world.messages.all.map(\.conversation) == [recent])
        #expect(hub.world.cipher.isShredded(.conversation(hub.org.id, old)))
        #expect(try await hub.world.conversations.conversation(old)?.hasEnded == true)
        #expect(hub.delivered(to: 1).contains(.ended(id: nil, room: old)))
        #expect(hub.world.audit.events.last.map { "\($0.action) \($0.target) \($0.detail)" } == "conversation.purged \(old.rawValue) messages=1 key=shredded reason=retention export=none")
        // The next sweep does not purge it again.
        await hub.pipeline.tick(at: hub.world.clock.now)
        #expect(hub.world.audit.actions.filter { $0 == "conversation.purged" }.count == 1)
    }

    @Test func retainMustBePositive() {
        let config = StageHarness.hipaaConfig.replacingOccurrences(of: "stage purge on=end", with: "stage purge on=end retain=0s")
        #expect(throws: ConfigError.self) { try StageHarness(config) }
    }
}

@Suite("end-of-chat hook")
struct EndOfChatHookTests {
    static let exporting = StageHarness.hipaaConfig.replacingOccurrences(
        of: "stage purge on=end", with: "stage purge on=end export_dir=/var/lib/carehub/exports export_key=/etc/carehub/export.pem")

    @Test func theTranscriptIsExportedOpenedThenPurged() async throws {
        let hub = try StageHarness(Self.exporting)
        let room = try await hub.visitor(1)
        _ = await hub.run(.send(room: room, text: "my rash is worse"), from: 1)
        _ = await hub.login(2)
        _ = await hub.run(.send(room: room, text: "we'll call you"), from: 2)
        _ = await hub.run(.end(room: room), from: 2)
        let export = try #require(hub.world.exporter.exports.first)
        #expect(export.target == .directory(path: "/var/lib/carehub/exports", certificate: "/etc/carehub/export.pem"))
        #expect(export.transcript.lines.map(\.text) == ["my rash is worse", "we'll call you"])
        #expect(export.transcript.lines.map(\.from) == ["visitor", "joy"])
        #expect(hub.world.messages.all.isEmpty)
        #expect(hub.world.cipher.isShredded(.conversation(hub.org.id, room)))
        // Ending it again changes nothing: the export is not overwritten by an empty transcript.
        _ = await hub.run(.end(room: room), from: 2)
        #expect(hub.world.exporter.exports.count == 1)
        #expect(hub.world.audit.actions.filter { $0 == "conversation.purged" }.count == 1)
        let purge = try #require(hub.world.audit.events.last { $0.action == "conversation.purged" })
        #expect(purge.action == "conversation.purged")
        #expect(purge.detail == "messages=2 key=shredded reason=end export=directory:/var/lib/carehub/exports (encrypted)")
    }

    @Test func aFailedExportPurgesNothingAndIsRetriedWithBackOff() async throws {
        let hub = try StageHarness(Self.exporting)
        hub.world.exporter.failing = true
        let room = try await hub.visitor(1)
        _ = await hub.run(.send(room: room, text: "keep me until exported"), from: 1)
        _ = await hub.login(2)
        #expect(await hub.run(.end(room: room), from: 2) == .ended(id: nil, room: room))
        #expect(hub.world.messages.all.count == 1)
        #expect(!hub.world.cipher.isShredded(.conversation(hub.org.id, room)))
        let first = try #require(hub.world.conversations.deferral(of: room))
        #expect(first.attempts == 1 && first.reason == "sink unavailable")
        #expect(first.at == hub.world.clock.now.addingTimeInterval(PurgeStage.firstRetryDelay))
        #expect(hub.world.events.events.contains(.purgeDeferred(org: hub.org.id, conversation: room, attempts: 1)))

        // Still failing at the retry: the next wait is twice as long.
        hub.world.clock.advance(by: PurgeStage.firstRetryDelay)
        await hub.pipeline.tick(at: hub.world.clock.now)
        let second = try #require(hub.world.conversations.deferral(of: room))
        #expect(second.attempts == 2)
        #expect(second.at == hub.world.clock.now.addingTimeInterval(2 * PurgeStage.firstRetryDelay))
        // Not due yet: no attempt.
        hub.world.exporter.failing = false
        hub.world.clock.advance(by: PurgeStage.firstRetryDelay)
        await hub.pipeline.tick(at: hub.world.clock.now)
        #expect(hub.world.messages.all.count == 1)
        // Due: exported, then purged.
        hub.world.clock.advance(by: PurgeStage.firstRetryDelay)
        await hub.pipeline.tick(at: hub.world.clock.now)
        #expect(hub.world.exporter.exports.count == 1)
        #expect(hub.world.messages.all.isEmpty)
        #expect(hub.world.audit.events.last?.detail.contains("reason=retry") == true)
    }

    @Test func anAbandonedConversationEndsAndIsPurged() async throws {
        let hub = try StageHarness(StageHarness.hipaaConfig.replacingOccurrences(of: "stage purge on=end", with: "stage purge on=end abandon=10m"))
        let gone = try await hub.visitor(1)
        let staying = try await hub.visitor(2)
        _ = await hub.login(3)
        _ = await hub.run(.send(room: gone, text: "brb"), from: 1)
        _ = await hub.run(.send(room: gone, text: "Take your time"), from: 3)
        hub.world.rooms.leaveAll(connection: ConnectionID(1))
        await hub.pipeline.tick(at: hub.world.clock.now)
        hub.world.clock.advance(by: 9 * 60)
        await hub.pipeline.tick(at: hub.world.clock.now)
        #expect(try await hub.world.conversations.conversation(gone)?.hasEnded == false)
        hub.world.clock.advance(by: 61)
        await hub.pipeline.tick(at: hub.world.clock.now)
        #expect(try await hub.world.conversations.conversation(gone)?.hasEnded == true)
        #expect(try await hub.world.conversations.conversation(staying)?.hasEnded == false)
        #expect(hub.world.messages.all.isEmpty)
        #expect(hub.world.audit.events.last?.detail.contains("reason=abandoned") == true)
    }

    @Test func aVisitorWhoseLastMessageIsUnansweredIsNotAbandoned() async throws {
        let hub = try StageHarness(StageHarness.hipaaConfig.replacingOccurrences(of: "stage purge on=end", with: "stage purge on=end abandon=10m"))
        let waiting = try await hub.visitor(1)
        _ = await hub.run(.send(room: waiting, text: "please call me back"), from: 1)
        hub.world.rooms.leaveAll(connection: ConnectionID(1))
        await hub.pipeline.tick(at: hub.world.clock.now)
        hub.world.clock.advance(by: 3 * 3600)
        await hub.pipeline.tick(at: hub.world.clock.now)
        #expect(try await hub.world.conversations.conversation(waiting)?.hasEnded == false)
        #expect(hub.world.messages.all.count == 1)
        // Once answered, the patient has `abandon` from the answer to come back.
        _ = await hub.login(2)
        _ = await hub.run(.send(room: waiting, text: "We will call you"), from: 2)
        hub.world.clock.advance(by: 9 * 60)
        await hub.pipeline.tick(at: hub.world.clock.now)
        #expect(try await hub.world.conversations.conversation(waiting)?.hasEnded == false)
        hub.world.clock.advance(by: 2 * 60)
        await hub.pipeline.tick(at: hub.world.clock.now)
        #expect(try await hub.world.conversations.conversation(waiting)?.hasEnded == true)
    }

    @Test func aVisitorOutsideHIPAAModeMayAskForAnEmailedTranscript() async throws {
        let config = """
            [org studio]
            name = Lotus Studio
            hipaa = off
            integration mailer type=email from=studio@lotus.example baa=no
            stage auth
            stage store
            stage purge on=end transcript_email=mailer
            stage fanout
            """
        let hub = try StageHarness(config)
        let room = try await hub.visitor(1)
        _ = await hub.run(.send(room: room, text: "class times?"), from: 1)
        #expect(await hub.run(.transcript(room: room, to: "pat@example.org"), from: 1) == .transcriptRequested(id: nil, room: room))
        _ = await hub.run(.end(room: room), from: 1)
        let export = try #require(hub.world.exporter.exports.first)
        #expect(export.target.description == "email:mailer")
        if case .email(_, let to) = export.target { #expect(to == "pat@example.org") }
        #expect(try await hub.world.conversations.conversation(room)?.transcriptTo == nil)
    }

    @Test func aHIPAAOrganisationNeverEmailsTranscripts() async throws {
        let hub = try StageHarness()
        let room = try await hub.visitor(1)
        guard case .error(_, let error) = await hub.run(.transcript(room: room, to: "pat@example.org"), from: 1) else {
            Issue.record("expected an error")
            return
        }
        #expect(error.code == .forbidden)
        let refused = """
            [org clinic]
            hipaa = on
            integration mailer type=email baa=yes
            stage auth
            stage idle timeout=10m
            stage encrypt
            stage store
            stage purge on=end transcript_email=mailer
            stage fanout
            """
        #expect(throws: ConfigError.self) { try StageHarness(refused) }
    }
}

@Suite("assigned conversations")
struct AssignmentTests {
    static let config = StageHarness.hipaaConfig.replacingOccurrences(of: "hipaa = on", with: "hipaa = on\nstaff_access = assigned")

    @Test func staffSeeOnlyRoomsAssignedToThemAndOnlyAdminsAssign() async throws {
        let hub = try StageHarness(Self.config, staff: [("joy", .staff, "joy-password"), ("ada", .admin, "ada-password")])
        _ = await hub.login(2)
        _ = await hub.login(3, user: "ada", password: "ada-password")
        let room = try await hub.visitor(1)
        // Only the admin hears of the new room.
        #expect(!hub.delivered(to: 2).contains { if case .roomOpened = $0 { true } else { false } })
        #expect(hub.delivered(to: 3).contains { if case .roomOpened = $0 { true } else { false } })
        guard case .rooms(_, let before, _) = await hub.run(.rooms(), from: 2) else { Issue.record("no rooms reply"); return }
        #expect(before.isEmpty)
        guard case .error(_, let refused) = await hub.run(.subscribe(room: room), from: 2) else { Issue.record("subscribed"); return }
        #expect(refused.code == .forbidden)
        guard case .error(_, let notAdmin) = await hub.run(.assign(room: room, user: "joy"), from: 2) else { Issue.record("assigned"); return }
        #expect(notAdmin.code == .forbidden)

        #expect(await hub.run(.assign(room: room, user: "joy"), from: 3) == .assigned(id: nil, room: room, user: "joy"))
        #expect(hub.delivered(to: 2).contains(.assigned(id: nil, room: room, user: "joy")))
        guard case .rooms(_, let after, _) = await hub.run(.rooms(), from: 2) else { Issue.record("no rooms reply"); return }
        #expect(after.map(\.room) == [room] && after.first?.assignedTo == "joy")
        _ = try expectSubscribed(await hub.run(.subscribe(room: room), from: 2))
        #expect(hub.world.audit.events.contains { $0.action == "conversation.assigned" && $0.detail == "user=joy previous=none" })
    }

    @Test func withoutStaffAccessAssignedThereIsNothingToAssign() async throws {
        let hub = try StageHarness(staff: [("ada", .admin, "ada-password")])
        _ = await hub.login(2, user: "ada", password: "ada-password")
        let room = try await hub.visitor(1)
        guard case .error(_, let error) = await hub.run(.assign(room: room, user: "ada"), from: 2) else { Issue.record("assigned"); return }
        #expect(error.code == .forbidden)
    }
}

@Suite("notification template")
struct NotificationTemplateTests {
    @Test func hipaaNoticesDropAPreviewQueuedBeforeHIPAAModeWasSwitchedOn() {
        let notification = StaffNotification(
            org: OrgID("clinic"), conversation: ConversationID("c_1"), unread: 3, preview: "CANARY rash", from: "Pat Doe", at: Date(timeIntervalSince1970: 0))
        let hipaa = NotificationTemplate.render(notification, org: OrgSettings(id: OrgID("clinic"), displayName: "Riverside", hipaa: true), link: "https://chat.example/staff.html#room=c_1")
        for text in [hipaa.json, hipaa.text, hipaa.subject] {
            #expect(!text.contains("CANARY") && !text.contains("Pat"))
        }
        #expect(hipaa.text == "Riverside: 3 unread messages in a patient conversation. Open https://chat.example/staff.html#room=c_1")
        let open = NotificationTemplate.render(notification, org: OrgSettings(id: OrgID("clinic"), displayName: "Riverside", hipaa: false), link: "/x")
        #expect(open.json.contains("\"preview\":\"CANARY rash\"") && open.text.contains("Pat Doe"))
    }
}
