import CareHubCore
import CareHubCrypto
import CareHubStages
import CareHubStorage
import Foundation
import Logging
import Synchronization

/// The admin API: an admin's organisation only, after the pipeline's auth stage has checked the
/// role and the second factor. Every change is audited in the admin's name.
final class AdminService: Sendable {
    private let configuration: HubConfiguration
    private let configPath: String
    private let database: CareHubDatabase
    let audit: SQLiteAuditLog
    private let conversations: SQLiteConversationStore
    let environment: StageEnvironment
    /// Integration tokens, by the rules `carehub tokens` follows (`tokens.*`, AdminService+Tokens.swift).
    let tokens: APITokens
    private let accounts: StaffAccounts
    private let auditKey: SymmetricKey
    private let events: any PipelineEvents
    /// Where pipeline.conf is read and written (fsync), off the cooperative pool.
    private let io: BlockingPool
    private let logger: Logger
    /// Set while a change to pipeline.conf is being checked, written and applied.
    private let changeRunning = Mutex(false)

    init(
        configuration: HubConfiguration, configPath: String, database: CareHubDatabase, audit: SQLiteAuditLog,
        conversations: SQLiteConversationStore, environment: StageEnvironment, accounts: StaffAccounts, tokens: APITokens,
        auditKey: SymmetricKey, events: any PipelineEvents, io: BlockingPool, logger: Logger
    ) {
        self.configuration = configuration
        self.configPath = configPath
        self.database = database
        self.audit = audit
        self.conversations = conversations
        self.environment = environment
        self.accounts = accounts
        self.tokens = tokens
        self.auditKey = auditKey
        self.events = events
        self.io = io
        self.logger = logger
    }

    var config: HubConfig { configuration.config }

    func administer(_ request: AdminRequest, session: Session, address: String, id: String?) async -> ServerFrame {
        let actor = session.principal.displayName
        let author = StaffAccounts.Author(actor: actor, address: address, account: actor)
        do {
            let result: String
            switch request {
            case .pipeline:
                result = try await pipelineJSON(session.org)
            case .replacePipeline(let text, let base, let apply):
                result = try await replacePipeline(session.org, with: text, base: base, apply: apply, actor: actor, address: address)
            case .enableHIPAA(let attestation):
                result = try await enableHIPAA(session.org, attestation: attestation, actor: actor, address: address)
            case .disableHIPAA(let purge):
                result = try await disableHIPAA(session.org, purge: purge, actor: actor, address: address)
            case .users:
                result = try await usersJSON(session.org)
            case .addUser(let name, let role, let password, let displayName):
                // A name that is taken is a storage error: `conflict`, below.
                try await accounts.add(org: session.org, name: name, role: role, password: password, displayName: displayName, by: author)
                result = try await usersJSON(session.org)
            case .setDisplayName(let user, let displayName):
                try await changeUser { try await accounts.setDisplayName(org: session.org, name: user, displayName: displayName, by: author) }
                result = try await usersJSON(session.org)
            case .setDisabled(let user, let disabled):
                try await changeUser { try await accounts.setDisabled(org: session.org, name: user, disabled: disabled, by: author) }
                result = try await usersJSON(session.org)
            case .setRole(let user, let role):
                try await changeUser { try await accounts.setRole(org: session.org, name: user, role: role, by: author) }
                result = try await usersJSON(session.org)
            case .resetSecondFactor(let user):
                try await changeUser { try await accounts.resetSecondFactor(org: session.org, name: user, by: author) }
                result = try await usersJSON(session.org)
            case .unlock(let user):
                try await changeUser { try await accounts.unlock(org: session.org, name: user, by: author) }
                result = try await usersJSON(session.org)
            case .audit(let limit, let before):
                result = try await auditJSON(session.org, limit: limit, before: before)
            case .verifyAudit:
                result = try await verifyJSON(session.org)
            case .replies:
                result = try await repliesJSON(session.org)
            case .saveReply(let reply):
                result = try await saveReply(session.org, reply, actor: actor, address: address)
            case .deleteReply(let name):
                result = try await deleteReply(session.org, name: name, actor: actor, address: address)
            case .tokens:
                result = try await tokensJSON(session.org)
            case .createToken(let integration, let scopes, let days, let allowFrom):
                result = try await createToken(
                    session.org, integration: integration, scopes: scopes, days: days, allowFrom: allowFrom, actor: actor, address: address)
            case .approveToken(let token, let code):
                result = try await approveToken(session.org, token, code: code, actor: actor, address: address)
            case .revokeToken(let token):
                result = try await revokeToken(session.org, token, actor: actor, address: address)
            }
            return .admin(id: id, op: request.op, result: result)
        } catch let refusal as AdminRefusal {
            return .configRefused(id: id, message: refusal.message, issues: refusal.issues)
        } catch let error as PipelineError {
            return .error(id: id, error: error)
        } catch let error as StorageError {
            return .error(id: id, error: PipelineError(.conflict, error.description))
        } catch {
            logger.error("admin request failed", metadata: ["admin.op": "\(request.op.rawValue)", "error.type": "\(type(of: error))"])
            return .error(id: id, error: .internal)
        }
    }

    // MARK: Pipeline

    private func pipelineJSON(_ org: OrgID) async throws -> String {
        let (file, snapshot, section) = try await currentSection(org)
        let inForce = config.org(org)
        let held = try await conversations.unpurged(org: org, startedBefore: .distantFuture, limit: 100_000).count
        let attestation = try await SQLiteAttestations(database: database).latest(org: org)
        var w = JSONWriter()
        w.field("org", org.rawValue)
        w.field("name", inForce?.settings.displayName ?? org.rawValue)
        w.field("hipaa", inForce?.settings.hipaa ?? false)
        w.field("text", section.text)
        w.field("firstLine", Int64(section.firstLine))
        w.field("version", snapshot.version)
        w.field("inForce", isInForce(section.text, org: org))
        Self.writeStages(of: inForce, to: &w)
        w.strings("integrations", inForce?.settings.integrations.map(\.name) ?? [])
        w.field("conversations", Int64(held))
        if let attestation {
            w.object("attestation") { object in
                object.field("baaSignedOn", attestation.attestation.signedOn)
                object.field("privacyOfficer", attestation.attestation.officerName)
                object.field("privacyOfficerEmail", attestation.attestation.officerEmail)
                object.field("recordedBy", attestation.recordedBy)
                object.field("recordedAt", attestation.recordedAt.epochMilliseconds)
            }
        } else {
            w.null("attestation")
        }
        let versions = try await io.run { Array(file.versions(of: org).prefix(20)) }
        w.strings("versions", versions)
        return w.finish()
    }

    /// Whether the configuration in force is the one this section text describes (false after a
    /// hand edit of pipeline.conf that was not reloaded yet).
    private func isInForce(_ section: String, org: OrgID) -> Bool {
        guard let parsed = try? StageRegistry.standard.load(section, file: "section") else { return false }
        return parsed.org(org)?.summaryLines == config.org(org)?.summaryLines
    }

    private func replacePipeline(_ org: OrgID, with text: String, base: String?, apply: Bool, actor: String, address: String) async throws -> String {
        guard apply else {
            // A check writes nothing, so it need not wait for a change in progress.
            let (_, snapshot, current) = try await currentSection(org)
            let checked = try PipelineEdit.check(text, replacing: current.text, of: org, in: snapshot.text, file: configPath)
            return Self.checkedJSON(checked.config, org: org)
        }
        return try await exclusively {
            let (file, snapshot, current) = try await currentSection(org)
            if let base, base != snapshot.version {
                throw PipelineError(.conflict, "pipeline.conf changed since you loaded it (edited on the host or by another admin); load it again and redo your change")
            }
            let checked = try PipelineEdit.check(text, replacing: current.text, of: org, in: snapshot.text, file: configPath)
            try await write(checked.text, to: file, replacing: snapshot, org: org, author: actor)
            await configuration.apply(checked.config, admin: (org, actor, address))
            logger.notice("pipeline changed through the admin API", metadata: ["org.id": "\(org)", "admin": "\(actor)"])
            return try await pipelineJSON(org)
        }
    }

    private func enableHIPAA(_ org: OrgID, attestation: BAAAttestation, actor: String, address: String) async throws -> String {
        if let problem = attestation.problem(today: Date()) { throw PipelineError(.invalidField, problem) }
        return try await exclusively {
            let (file, snapshot, current) = try await currentSection(org)
            guard config.org(org)?.settings.hipaa == false else { throw PipelineError(.conflict, "HIPAA mode is already on") }
            let section = PipelineEdit.settingHIPAA(true, in: current.text)
            let checked = try PipelineEdit.check(section, replacing: current.text, of: org, in: snapshot.text, file: configPath, hipaaSwitch: true)
            let now = Date()
            try await SQLiteAttestations(database: database, audit: audit).record(
                attestation, org: org, by: actor, at: now,
                audit: AuditEvent(
                    at: now, org: org, actor: actor, address: address, action: "baa.attested",
                    detail: "signed_on=\(attestation.signedOn) privacy_officer=\"\(attestation.officerName)\" <\(attestation.officerEmail)>"))
            // What the organisation stored so far is sealed before the switch and once more after
            // it (for messages committed while it was being made), and only then reported done.
            let before = try await EncryptStage.sealStored(org: org, environment: environment)
            try await write(checked.text, to: file, replacing: snapshot, org: org, author: actor)
            // Ends the organisation's sessions (this admin's too) and audits hipaa.enabled.
            await configuration.apply(checked.config, admin: (org, actor, address))
            _ = try await configuration.sealEarlierRecords(of: org, actor: (actor, address), alreadySealed: before)
            return try await pipelineJSON(org)
        }
    }

    private func disableHIPAA(_ org: OrgID, purge: Bool, actor: String, address: String) async throws -> String {
        try await exclusively {
            let (file, snapshot, current) = try await currentSection(org)
            guard config.org(org)?.settings.hipaa == true else { throw PipelineError(.conflict, "HIPAA mode is already off") }
            let section = PipelineEdit.settingHIPAA(false, in: current.text)
            let checked = try PipelineEdit.check(section, replacing: current.text, of: org, in: snapshot.text, file: configPath, hipaaSwitch: true)
            let held = try await conversations.unpurged(org: org, startedBefore: .distantFuture, limit: 100_000)
            if !held.isEmpty && !purge {
                throw PipelineError(.conflict, "HIPAA mode stays on: the organisation still holds \(held.count) conversation\(held.count == 1 ? "" : "s") kept under its rules. Confirm purging them first (purge: true)")
            }
            // Purged under HIPAA rules first, so nothing recorded under them outlives the switch.
            let lifecycle = environment.conversationLifecycle
            for conversation in held {
                _ = try await lifecycle.end(conversation, at: Date())
                try await lifecycle.erase(conversation.id, org: org, actor: actor, address: address, detail: "reason=hipaa_off export=none")
            }
            try await write(checked.text, to: file, replacing: snapshot, org: org, author: actor)
            await configuration.apply(checked.config, admin: (org, actor, address))
            try await audit.record(AuditEvent(at: Date(), org: org, actor: actor, address: address, action: "hipaa.disabled", detail: "purged=\(held.count)"))
            return try await pipelineJSON(org)
        }
    }

    /// Runs one change to pipeline.conf at a time; a second admin is asked to retry.
    private func exclusively<T>(_ body: () async throws -> T) async throws -> T {
        let acquired = changeRunning.withLock { running -> Bool in
            guard !running else { return false }
            running = true
            return true
        }
        guard acquired else { throw PipelineError(.unavailable, "another change to the pipeline is being applied; try again in a moment") }
        defer { changeRunning.withLock { $0 = false } }
        return try await body()
    }

    private func readPipeline(_ file: PipelineFile) async throws -> PipelineFile.Snapshot {
        do {
            return try await io.run { try file.read() }
        } catch {
            logger.error("cannot read pipeline.conf", metadata: ["config.path": "\(configPath)"])
            throw PipelineError(.unavailable, "the hub cannot read its pipeline.conf; ask the operator to check the file")
        }
    }

    private func currentSection(_ org: OrgID) async throws -> (PipelineFile, PipelineFile.Snapshot, PipelineFile.Section) {
        let file = PipelineFile(path: configPath)
        let snapshot = try await readPipeline(file)
        guard let section = PipelineFile.section(org, in: snapshot.text) else { throw PipelineEdit.missingSection(org) }
        return (file, snapshot, section)
    }

    /// Writes the new file (temporary file, fsync, rename, directory fsync) on the I/O thread.
    private func write(_ text: String, to file: PipelineFile, replacing snapshot: PipelineFile.Snapshot, org: OrgID, author: String) async throws {
        do {
            _ = try await io.run { try file.write(text, replacing: snapshot, at: Date(), org: org, author: author) }
        } catch {
            logger.error("cannot write pipeline.conf", metadata: ["config.path": "\(configPath)", "error": "\(error)"])
            throw PipelineError(.unavailable, "the hub could not write pipeline.conf (\(error)); nothing changed")
        }
    }

    private static func checkedJSON(_ config: HubConfig, org: OrgID) -> String {
        var w = JSONWriter()
        w.field("valid", true)
        writeStages(of: config.org(org), to: &w)
        return w.finish()
    }

    /// `"stages":[{"name":…,"parameters":["key=value",…]},…]`, the organisation's chain.
    private static func writeStages(of org: ConfiguredOrg?, to w: inout JSONWriter) {
        w.array("stages", org?.stages ?? []) { element, stage in
            element.field("name", stage.name)
            element.strings("parameters", stage.configuration.summary)
        }
    }

    // MARK: Users

    private func usersJSON(_ org: OrgID) async throws -> String {
        let users = try await SQLiteUserDirectory(database: database).list(org: org)
        let now = Date()
        var w = JSONWriter()
        w.array("users", users) { element, user in
            element.field("user", user.name)
            element.field("role", user.role.rawValue)
            element.optionalField("displayName", user.displayName)
            element.field("disabled", user.disabled)
            element.field("twoFactor", user.secondFactor.isEnrolled)
            element.field("locked", user.throttle.isLocked(at: now))
        }
        return w.finish()
    }

    /// Runs a change to an existing account: one that is not there is `not_found`.
    private func changeUser(_ change: () async throws -> Void) async throws {
        do {
            try await change()
        } catch let error as StorageError {
            throw PipelineError(.notFound, error.description)
        }
    }

    // MARK: Canned replies

    private func repliesJSON(_ org: OrgID) async throws -> String {
        var w = JSONWriter()
        w.writeReplies(try await environment.replies.list(org: org))
        return w.finish()
    }

    /// The event names the reply and counts its bytes; the text itself stays out of the trail.
    private func saveReply(_ org: OrgID, _ reply: CannedReply, actor: String, address: String) async throws -> String {
        let event = AuditEvent(
            at: Date(), org: org, actor: actor, address: address, action: "reply.saved",
            detail: "name=\"\(reply.name)\" bytes=\(reply.text.utf8.count)")
        let saved = try await environment.replies.save(reply, org: org, by: actor, at: event.at, limit: CannedReply.maxPerOrg, recording: event)
        guard saved != .full else {
            throw PipelineError(.conflict, "the organisation already has \(CannedReply.maxPerOrg) canned replies, the most it may have; delete one first")
        }
        return try await repliesJSON(org)
    }

    private func deleteReply(_ org: OrgID, name: String, actor: String, address: String) async throws -> String {
        let event = AuditEvent(at: Date(), org: org, actor: actor, address: address, action: "reply.deleted", detail: "name=\"\(name)\"")
        guard try await environment.replies.delete(org: org, name: name, recording: event) else {
            throw PipelineError(.notFound, "no canned reply named '\(name)'")
        }
        return try await repliesJSON(org)
    }

    // MARK: Audit

    private func auditJSON(_ org: OrgID, limit: Int, before: Int64?) async throws -> String {
        let entries = try await audit.recent(org: org, before: before, limit: limit + 1)
        var w = JSONWriter()
        w.array("events", Array(entries.prefix(limit))) { element, entry in entry.write(to: &element) }
        w.field("more", entries.count > limit)
        return w.finish()
    }

    private func verifyJSON(_ org: OrgID) async throws -> String {
        // The whole chain is verified; the result speaks only of the admin's organisation.
        let verdict = try await audit.verify(checkpointKey: auditKey, for: org)
        var w = JSONWriter()
        w.field("holds", verdict.holds)
        w.field("events", Int64(verdict.events))
        if let brokenAt = verdict.brokenAt { w.field("brokenAt", brokenAt) }
        if let reason = verdict.reason { w.field("reason", reason) }
        w.field("message", verdict.description)
        return w.finish()
    }
}
