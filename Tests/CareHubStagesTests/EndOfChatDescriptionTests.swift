import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Testing

/// What the staff console is told ending a chat will do: one kind and one sentence per purge
/// configuration, in the `session` and `subscribed` replies, never a host path.
@Suite("end-of-chat description")
struct EndOfChatDescriptionTests {
    static let webhookExport = StageHarness.hipaaConfig
        .replacingOccurrences(of: "stage purge on=end", with: "stage purge on=end export_to=records")
        + "\nintegration records type=webhook url=https://records.example.org/carehub baa=yes"

    static let plainDirectory = """
        [org studio]
        name = Lotus Studio
        hipaa = off
        stage auth
        stage store
        stage purge on=end export_dir=/srv/lotus/transcripts
        stage fanout
        """

    static let erasingWithEmail = """
        [org studio]
        name = Lotus Studio
        hipaa = off
        integration mailer type=email from=studio@lotus.example baa=no
        stage auth
        stage store
        stage purge on=end transcript_email=mailer
        stage fanout
        """

    /// The `onEnd` of the login and subscribe replies under `config`, which must agree.
    static func described(_ config: String) async throws -> EndOfChat {
        let hub = try StageHarness(config)
        let room = try await hub.visitor(1)
        let session = await hub.login(2)
        let subscribed = await hub.run(.subscribe(room: room), from: 2)
        guard case .session(_, _, _, _, _, let atLogin, _) = session,
              case .subscribed(_, _, _, _, _, let atSubscribe, _) = subscribed else {
            throw PipelineError(.internal, "expected session and subscribed, got \(session) and \(subscribed)")
        }
        #expect(atLogin == atSubscribe)
        // On the wire: the field is there, and no host path of the configuration is.
        for json in [session.json(), subscribed.json()] {
            #expect(json.contains("\"onEnd\":{\"kind\":\"\(atLogin.kind.rawValue)\""))
            for path in ["/var/lib", "/etc/", "/srv/", ".pem"] { #expect(!json.contains(path)) }
        }
        return atLogin
    }

    @Test func anEncryptedDirectoryExportIsDescribedWithoutItsPaths() async throws {
        let onEnd = try await Self.described(EndOfChatHookTests.exporting)
        #expect(onEnd.kind == .exportFile)
        #expect(onEnd.text == "The transcript will be exported to the clinic's records (encrypted files on the hub's host) and then erased from CareHub.")
    }

    @Test func aPlainDirectoryExportSaysFilesNotEncryptedFiles() async throws {
        let onEnd = try await Self.described(Self.plainDirectory)
        #expect(onEnd.kind == .exportFile)
        #expect(onEnd.text == "The transcript will be exported to the clinic's records (files on the hub's host) and then erased from CareHub.")
    }

    @Test func aWebhookExportNamesTheIntegrationOnly() async throws {
        let onEnd = try await Self.described(Self.webhookExport)
        #expect(onEnd.kind == .exportWebhook)
        #expect(onEnd.text == "The transcript will be sent to records and then erased from CareHub.")
        #expect(!onEnd.text.contains("https://"))
    }

    @Test func aPurgeWithoutExportErases() async throws {
        let onEnd = try await Self.described(StageHarness.hipaaConfig)
        #expect(onEnd == EndOfChat(kind: .erase, text: "This chat will be erased and not kept anywhere."))
    }

    @Test func anEmailedCopyIsMentioned() async throws {
        let onEnd = try await Self.described(Self.erasingWithEmail)
        #expect(onEnd.kind == .erase)
        #expect(onEnd.text.contains("e-mailed"))
    }

    @Test func withoutAPurgeStageTheChatIsKept() async throws {
        let config = StageHarness.hipaaConfig.replacingOccurrences(of: "stage purge on=end\n", with: "")
        #expect(!config.contains("stage purge"))
        let onEnd = try await Self.described(config)
        #expect(onEnd == .kept)
        #expect(onEnd.text == "This chat stays in CareHub's history.")
    }
}

/// `activity`: what a console sends after a key press or click outside any room.
@Suite("activity frame")
struct ActivityFrameTests {
    @Test func activityKeepsAStaffSessionAliveWhereRoomListsDoNot() async throws {
        let hub = try StageHarness()
        _ = await hub.login(1)
        let noReply = ServerFrame.error(id: nil, error: PipelineError(.internal, "no reply"))  // the harness's marker
        for _ in 0..<3 {
            hub.world.clock.advance(by: 9 * 60)
            #expect(await hub.run(.activity, from: 1) == noReply)
            #expect(await hub.run(.rooms(), from: 1).errorCode == nil)
        }
        hub.world.clock.advance(by: 10 * 60 + 1)
        #expect(await hub.run(.rooms(), from: 1).errorCode == .sessionExpired)
    }

    @Test func activityIsForStaffOnly() async throws {
        let hub = try StageHarness()
        _ = try await hub.visitor(1)
        #expect(await hub.run(.activity, from: 1).errorCode == .forbidden)
        #expect(await hub.run(.activity, from: 2).errorCode == .unauthenticated)
    }

    @Test func activityDecodesFromItsWireForm() throws {
        guard case .success(let envelope) = Envelope.decode(Array(#"{"type":"activity"}"#.utf8)) else {
            throw PipelineError(.internal, "activity did not decode")
        }
        #expect(envelope.frame == .activity)
        #expect(envelope.frame.isUserAction)
        #expect(!ClientFrame.rooms().isUserAction)
    }
}
