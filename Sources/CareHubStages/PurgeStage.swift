import CareHubCore
import Foundation
import Synchronization

/// The end-of-chat hook. When a conversation ends (someone sends `end`, the visitor has been gone
/// longer than `abandon=`, or it is older than `retain=`), it:
///
/// 1. exports the transcript to the organisation's sink, if one is configured (`export_dir=` or
///    `export_to=`), and mails the visitor a copy if they asked and the organisation allows it;
/// 2. purges: deletes the messages and pre-chat form and crypto-shreds the data key.
///
/// If an export fails nothing is purged: the conversation stays pending and the hook tries again
/// with back-off (5 s, doubling, at most 15 minutes apart). Every purge is audited with ids, a
/// count and the export target, never content.
public final class PurgeStage: Stage {
    /// Parameters of `stage purge`.
    public struct Configuration: StageConfiguration {
        /// `on=end`: purge a conversation when it ends.
        public var trigger: String
        /// `retain=D`: end and purge conversations older than this even if they never ended (default: no limit).
        public var retain: Duration?
        /// `abandon=D`: end a conversation whose visitor has been gone this long (default: never).
        public var abandon: Duration?
        /// `export_dir=`, `export_key=` or `export_to=`: where transcripts go before the purge.
        public var export: ExportTarget?
        /// `transcript_email=`: the e-mail integration that mails a visitor their transcript on request (non-HIPAA only).
        public var transcriptEmail: Integration?

        public init(parameters: inout StageParameters, org: OrgSettings) throws {
            trigger = try parameters.choice("on", ["end"], default: "end")
            retain = try Self.optionalDuration("retain", in: Self.retainRange, &parameters)
            abandon = try Self.optionalDuration("abandon", in: Self.abandonRange, &parameters)
            let directory = parameters.string("export_dir")
            let certificate = parameters.string("export_key")
            let integrationName = parameters.string("export_to")
            if let directory {
                guard directory.hasPrefix("/") else { throw parameters.error("expected export_dir to be an absolute path, found export_dir=\(directory)") }
                guard integrationName == nil else { throw parameters.error("export_dir and export_to exclude each other; choose one sink") }
                if let certificate, !certificate.hasPrefix("/") {
                    throw parameters.error("expected export_key to be the absolute path of a PEM certificate, found export_key=\(certificate)")
                }
                // Patient text never lands on disk unencrypted in HIPAA mode, exports included.
                if org.hipaa && certificate == nil {
                    throw parameters.error("HIPAA organisation '\(org.id)' must encrypt exports: add export_key=/path/to/certificate.pem")
                }
                export = .directory(path: directory, certificate: certificate)
            } else if let integrationName {
                guard certificate == nil else { throw parameters.error("export_key applies to export_dir; an export_to endpoint is reached over TLS") }
                guard let integration = org.integration(integrationName) else {
                    throw parameters.error("export_to names '\(integrationName)', which is not an integration of [org \(org.id)]")
                }
                guard integration.kind == .webhook, integration.url?.isHTTPS == true, integration.baa else {
                    throw parameters.error("export_to must name an https:// webhook integration with baa=yes; '\(integrationName)' is not one")
                }
                export = .webhook(integration)
            } else if certificate != nil {
                throw parameters.error("export_key needs export_dir")
            }
            if let name = parameters.string("transcript_email") {
                if org.hipaa {
                    throw parameters.error("HIPAA organisation '\(org.id)' may not e-mail transcripts to visitors; remove transcript_email")
                }
                guard let integration = org.integration(name), integration.kind == .email else {
                    throw parameters.error("transcript_email names '\(name)', which is not an e-mail integration of [org \(org.id)]")
                }
                transcriptEmail = integration
            }
        }

        /// The accepted `retain`: 1 second to 3650 days.
        public static let retainRange = Duration.seconds(1)...ConfigValue.maximumDuration
        /// The accepted `abandon`: 1 second to 365 days.
        public static let abandonRange = Duration.seconds(1)...Duration.seconds(365 * 86_400)

        private static func optionalDuration(_ key: String, in range: ClosedRange<Duration>, _ parameters: inout StageParameters) throws -> Duration? {
            guard parameters.remainingKeys.contains(key) else { return nil }
            return try parameters.duration(key, in: range, default: range.lowerBound)
        }

        /// What ending a chat does under this configuration, for the staff console. It never
        /// names the export directory or the certificate (host paths); a webhook is named by its
        /// integration's name.
        public var endOfChat: EndOfChat {
            let copy = transcriptEmail == nil ? "" : " A visitor who asked for a copy is e-mailed one first."
            switch export {
            case .directory(_, let certificate)?:
                let files = certificate == nil ? "files" : "encrypted files"
                return EndOfChat(
                    kind: .exportFile,
                    text: "The transcript will be exported to the clinic's records (\(files) on the hub's host) and then erased from CareHub.\(copy)")
            case .webhook(let integration)?:
                return EndOfChat(kind: .exportWebhook, text: "The transcript will be sent to \(integration.name) and then erased from CareHub.\(copy)")
            case .email?, nil:
                if transcriptEmail != nil {
                    return EndOfChat(kind: .erase, text: "This chat will be erased from CareHub and not kept anywhere, except that a visitor who asked for a copy is e-mailed one first.")
                }
                return EndOfChat(kind: .erase, text: "This chat will be erased and not kept anywhere.")
            }
        }

        public var summary: [String] {
            var words = ["on=\(trigger)"]
            if let retain { words.append("retain=\(ConfigValue.format(retain))") }
            if let abandon { words.append("abandon=\(ConfigValue.format(abandon))") }
            switch export {
            case .directory(let path, let certificate)?:
                words.append("export_dir=\(path)")
                if let certificate { words.append("export_key=\(certificate)") }
            case .webhook(let integration)?: words.append("export_to=\(integration.name)")
            case .email?, nil: break
            }
            if let transcriptEmail { words.append("transcript_email=\(transcriptEmail.name)") }
            return words
        }
    }

    public static let name = "purge"
    public static let rules = StageRules(after: ["auth", "idle", "encrypt", "store"])

    /// The first retry delay; each failure doubles it, up to ``maximumRetryDelay``.
    public static let firstRetryDelay: TimeInterval = 5
    /// The longest wait between two attempts.
    public static let maximumRetryDelay: TimeInterval = 15 * 60

    private let configuration: Configuration
    private let org: OrgSettings
    private let environment: StageEnvironment
    /// Ends and erases conversations (``StandardConversationLifecycle``).
    private let lifecycle: any ConversationLifecycle
    private let lastAbandonCheck = Mutex<Date?>(nil)

    public init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment) {
        self.configuration = configuration
        self.org = org
        self.environment = environment
        lifecycle = environment.conversationLifecycle
    }

    public func handle(_ request: Request, next: Next) async throws -> Outcome {
        if case .transcript(let room, let address) = request.frame {
            guard configuration.transcriptEmail != nil, !org.hipaa else {
                throw PipelineError.forbidden("this organisation does not e-mail transcripts")
            }
            guard request.conversation?.hasEnded == false else { throw PipelineError(.conversationEnded, "the conversation has ended") }
            try await environment.conversations.requestTranscript(room, to: address)
            var outcome = try await next(request)
            outcome.handled = true
            return outcome
        }
        var outcome = try await next(request)
        switch request.frame {
        case .hello: outcome.offersTranscript = configuration.transcriptEmail != nil && !org.hipaa
        case .login, .sso, .subscribe: outcome.onEnd = configuration.endOfChat
        default: break
        }
        // Only the `end` that ends the conversation runs the hook: a repeated `end` must not
        // export the emptied transcript over the real one. Pending hooks are the sweep's.
        // Read fresh: the transcript address may have been given a moment ago.
        if case .end(let room) = request.frame, request.conversation?.hasEnded == false,
           var conversation = try await environment.conversations.conversation(room) {
            conversation.endedAt = conversation.endedAt ?? request.receivedAt
            await finish(conversation, actor: request.session?.principal.displayName ?? "system", address: request.peer, reason: "end")
        }
        return outcome
    }

    /// Time-driven work: retries of pending hooks, retention, abandoned conversations.
    public func tick(at now: Date) async {
        if let due = try? await environment.conversations.duePurges(org: org.id, at: now, limit: 100) {
            for conversation in due {
                await finish(conversation, actor: "system", address: "", reason: conversation.purgeAttempts > 0 ? "retry" : "end")
            }
        }
        if let retain = configuration.retain,
           let expired = try? await environment.conversations.unpurged(org: org.id, startedBefore: now.addingTimeInterval(-retain.seconds), limit: 100) {
            // Ended ones are the retry loop's, above, with its back-off.
            for conversation in expired where conversation.endedAt == nil {
                await end(conversation, at: now, reason: "retention")
            }
        }
        if let abandon = configuration.abandon { await endAbandoned(after: abandon, at: now) }
    }

    /// Ends an open conversation on the hub's initiative, tells the room, and runs the hook.
    private func end(_ conversation: Conversation, at now: Date, reason: String) async {
        guard let ended = try? await lifecycle.end(conversation, at: now) else { return }
        await environment.announce(ended, event: .ended, org: org)
        await finish(ended, actor: "system", address: "", reason: reason)
    }

    /// Visitors are checked every 5 seconds; a conversation whose visitor has had no connection in
    /// the room for `abandon` ends, unless the visitor's last message is unanswered (a message
    /// left at night waits for the morning; `retain=` still applies), and then the clock starts
    /// again when it is answered. After a restart the clock starts at the first check.
    private func endAbandoned(after abandon: Duration, at now: Date) async {
        let due = lastAbandonCheck.withLock { last -> Bool in
            if let last, now.timeIntervalSince(last) < 5 { return false }
            last = now
            return true
        }
        guard due, let open = try? await environment.conversations.openConversations(org: org.id, limit: 5000) else { return }
        let present = Set(open.filter { !environment.visitorConnections(of: $0.id).isEmpty }.map(\.id))
        let gone = Set(environment.local.endOfChat.abandoned(
            org: org.id, open: open.map(\.id), present: present, after: abandon.seconds, at: now))
        let abandoned = open.filter { gone.contains($0.id) }
        for conversation in abandoned {
            guard await environment.roomActivity(of: conversation, event: .message).waitingSince == nil else {
                // Still waiting for an answer: once answered, the visitor has `abandon` from then to come back.
                environment.local.endOfChat.restartAbsence(of: conversation.id, org: org.id, at: now)
                continue
            }
            await end(conversation, at: now, reason: "abandoned")
        }
    }

    /// Export, then purge. A failed export leaves everything in place and schedules a retry.
    private func finish(_ conversation: Conversation, actor: String, address: String, reason: String) async {
        let room = conversation.id
        guard environment.local.endOfChat.beginExport(room) else { return }
        defer { environment.local.endOfChat.endExport(room) }
        var targets: [ExportTarget] = configuration.export.map { [$0] } ?? []
        if let mail = configuration.transcriptEmail, !org.hipaa, let to = conversation.transcriptTo {
            targets.append(.email(mail, to: to))
        }
        do {
            if !targets.isEmpty {
                // The files themselves go only into an export encrypted to the organisation's
                // certificate; the exporter leaves them (and in HIPAA mode their names) out elsewhere.
                let files = targets.contains { if case .directory(_, _?) = $0 { true } else { false } }
                let transcript = try await SealedHistory(org: org.id, environment: environment).transcript(of: conversation, files: files)
                for target in targets {
                    try await environment.exporter.export(transcript.prepared(for: target, hipaa: org.hipaa), to: target, org: org)
                }
            }
        } catch {
            let attempts = conversation.purgeAttempts + 1
            let delay = min(Self.firstRetryDelay * pow(2, Double(min(attempts - 1, 16))), Self.maximumRetryDelay)
            let failure = (error as? ExportFailure)?.description ?? "export failed (\(type(of: error)))"
            try? await environment.conversations.deferPurge(room, attempts: attempts, retryAt: environment.clock.now.addingTimeInterval(delay), reason: failure)
            environment.events.emit(.purgeDeferred(org: org.id, conversation: room, attempts: attempts))
            return
        }
        do {
            let exported = targets.isEmpty ? "none" : targets.map(\.description).joined(separator: ",")
            try await lifecycle.erase(room, org: org.id, actor: actor, address: address, detail: "reason=\(reason) export=\(exported)")
        } catch {
            // Storage trouble: the conversation stays unpurged and the sweep tries again.
            try? await environment.conversations.deferPurge(
                room, attempts: conversation.purgeAttempts + 1, retryAt: environment.clock.now.addingTimeInterval(Self.firstRetryDelay),
                reason: "purge failed (\(type(of: error)))")
        }
    }
}
