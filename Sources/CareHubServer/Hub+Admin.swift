import CareHubCore
import CareHubCrypto
import CareHubStages
import CareHubStorage
import Foundation

/// The admin API: an admin's organisation only, after the pipeline's auth stage has checked the
/// role and the second factor. Every change is audited in the admin's name.
extension Hub {
    func administer(_ request: AdminRequest, session: Session, address: String, id: String?) async -> ServerFrame {
        let actor = session.principal.displayName
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
                result = try await addUser(session.org, name: name, role: role, password: password, displayName: displayName, actor: actor, address: address)
            case .setDisplayName(let user, let displayName):
                try await changeUser(session.org, user, actor: actor, address: address, action: "user.display_name_changed", detail: "new=\"\(displayName)\"") { users, event in
                    try await users.setDisplayName(org: session.org, name: user, displayName: displayName, audit: event)
                }
                result = try await usersJSON(session.org)
            case .setDisabled(let user, let disabled):
                try refuseSelf(user, actor: actor, disabled ? "disable" : "enable")
                try await changeUser(session.org, user, actor: actor, address: address, action: disabled ? "user.disabled" : "user.enabled") { users, event in
                    try await users.setDisabled(org: session.org, name: user, disabled: disabled, audit: event)
                }
                if disabled { await revokeSessions(of: user, in: session.org, reason: "disabled") }
                result = try await usersJSON(session.org)
            case .setRole(let user, let role):
                try refuseSelf(user, actor: actor, "change the role of")
                let old = try await SQLiteUserDirectory(database: database).user(org: session.org, name: user)?.role
                try await changeUser(session.org, user, actor: actor, address: address, action: "user.role_changed", detail: "old=\(old?.rawValue ?? "?") new=\(role.rawValue)") { users, event in
                    _ = try await users.setRole(org: session.org, name: user, role: role, audit: event)
                }
                if old != role { await revokeSessions(of: user, in: session.org, reason: "role_changed") }
                result = try await usersJSON(session.org)
            case .resetSecondFactor(let user):
                try await changeUser(session.org, user, actor: actor, address: address, action: "user.2fa_reset") { users, event in
                    try await users.resetSecondFactor(org: session.org, name: user, audit: event)
                }
                await revokeSessions(of: user, in: session.org, reason: "2fa_reset")
                result = try await usersJSON(session.org)
            case .unlock(let user):
                try await changeUser(session.org, user, actor: actor, address: address, action: "user.unlocked") { users, event in
                    try await users.unlock(org: session.org, name: user, audit: event)
                }
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
        let (file, snapshot, section) = try currentSection(org)
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
        w.strings("versions", Array(file.versions(of: org).prefix(20)))
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
            let (_, snapshot, current) = try currentSection(org)
            let checked = try Self.check(text, replacing: current.text, of: org, in: snapshot.text, file: options.configPath)
            return Self.checkedJSON(checked.config, org: org)
        }
        return try await exclusively {
            let (file, snapshot, current) = try currentSection(org)
            if let base, base != snapshot.version {
                throw PipelineError(.conflict, "pipeline.conf changed since you loaded it (edited on the host or by another admin); load it again and redo your change")
            }
            let checked = try Self.check(text, replacing: current.text, of: org, in: snapshot.text, file: options.configPath)
            try write(checked.text, to: file, replacing: snapshot, org: org, author: actor)
            self.apply(checked.config, admin: (org, actor, address))
            logger.notice("pipeline changed through the admin API", metadata: ["org.id": "\(org)", "admin": "\(actor)"])
            return try await pipelineJSON(org)
        }
    }

    private func enableHIPAA(_ org: OrgID, attestation: BAAAttestation, actor: String, address: String) async throws -> String {
        if let problem = attestation.problem(today: Date()) { throw PipelineError(.invalidField, problem) }
        return try await exclusively {
            let (file, snapshot, current) = try currentSection(org)
            guard config.org(org)?.settings.hipaa == false else { throw PipelineError(.conflict, "HIPAA mode is already on") }
            let section = Self.settingHIPAA(true, in: current.text)
            let checked = try Self.check(section, replacing: current.text, of: org, in: snapshot.text, file: options.configPath, hipaaSwitch: true)
            let now = Date()
            try await SQLiteAttestations(database: database, audit: audit).record(
                attestation, org: org, by: actor, at: now,
                audit: AuditEvent(
                    at: now, org: org, actor: actor, address: address, action: "baa.attested",
                    detail: "signed_on=\(attestation.signedOn) privacy_officer=\"\(attestation.officerName)\" <\(attestation.officerEmail)>"))
            // What the organisation stored so far is sealed before the switch and once more after
            // it (for messages committed while it was being made), and only then reported done.
            let before = try await EncryptStage.sealStored(org: org, environment: environment)
            try write(checked.text, to: file, replacing: snapshot, org: org, author: actor)
            // Ends the organisation's sessions (this admin's too) and audits hipaa.enabled.
            self.apply(checked.config, admin: (org, actor, address))
            _ = try await sealEarlierRecords(of: org, actor: (actor, address), alreadySealed: before)
            return try await pipelineJSON(org)
        }
    }

    private func disableHIPAA(_ org: OrgID, purge: Bool, actor: String, address: String) async throws -> String {
        try await exclusively {
            let (file, snapshot, current) = try currentSection(org)
            guard config.org(org)?.settings.hipaa == true else { throw PipelineError(.conflict, "HIPAA mode is already off") }
            let section = Self.settingHIPAA(false, in: current.text)
            let checked = try Self.check(section, replacing: current.text, of: org, in: snapshot.text, file: options.configPath, hipaaSwitch: true)
            let held = try await conversations.unpurged(org: org, startedBefore: .distantFuture, limit: 100_000)
            if !held.isEmpty && !purge {
                throw PipelineError(.conflict, "HIPAA mode stays on: the organisation still holds \(held.count) conversation\(held.count == 1 ? "" : "s") kept under its rules. Confirm purging them first (purge: true)")
            }
            // Purged under HIPAA rules first, so nothing recorded under them outlives the switch.
            for conversation in held {
                _ = try await PurgeStage.close(conversation, at: Date(), environment: environment)
                try await PurgeStage.erase(conversation.id, org: org, environment: environment, actor: actor, address: address, detail: "reason=hipaa_off export=none")
            }
            try write(checked.text, to: file, replacing: snapshot, org: org, author: actor)
            self.apply(checked.config, admin: (org, actor, address))
            try await audit.record(AuditEvent(at: Date(), org: org, actor: actor, address: address, action: "hipaa.disabled", detail: "purged=\(held.count)"))
            return try await pipelineJSON(org)
        }
    }

    /// Runs one change to pipeline.conf at a time; a second admin is asked to retry.
    private func exclusively<T>(_ body: () async throws -> T) async throws -> T {
        let acquired = adminChangeRunning.withLock { running -> Bool in
            guard !running else { return false }
            running = true
            return true
        }
        guard acquired else { throw PipelineError(.unavailable, "another change to the pipeline is being applied; try again in a moment") }
        defer { adminChangeRunning.withLock { $0 = false } }
        return try await body()
    }

    private func readPipeline(_ file: PipelineFile) throws -> PipelineFile.Snapshot {
        do {
            return try file.read()
        } catch {
            logger.error("cannot read pipeline.conf", metadata: ["config.path": "\(options.configPath)"])
            throw PipelineError(.unavailable, "the hub cannot read its pipeline.conf; ask the operator to check the file")
        }
    }

    private func currentSection(_ org: OrgID) throws -> (PipelineFile, PipelineFile.Snapshot, PipelineFile.Section) {
        let file = PipelineFile(path: options.configPath)
        let snapshot = try readPipeline(file)
        guard let section = PipelineFile.section(org, in: snapshot.text) else { throw Self.missingSection(org) }
        return (file, snapshot, section)
    }

    private static func missingSection(_ org: OrgID) -> PipelineError {
        PipelineError(.conflict, "pipeline.conf on disk no longer has an [org \(org)] section; ask the operator")
    }

    private func write(_ text: String, to file: PipelineFile, replacing snapshot: PipelineFile.Snapshot, org: OrgID, author: String) throws {
        do {
            try file.write(text, replacing: snapshot, at: Date(), org: org, author: author)
        } catch {
            logger.error("cannot write pipeline.conf", metadata: ["config.path": "\(options.configPath)", "error": "\(error)"])
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

    private func addUser(
        _ org: OrgID, name: String, role: Role, password: Password, displayName: String?, actor: String, address: String
    ) async throws -> String {
        if let problem = PasswordPolicy().problem(with: password.text, user: name, org: org.rawValue) {
            throw PipelineError(.invalidField, "password refused: \(problem)")
        }
        let hash = try await scrypt.hash(password)
        let now = Date()
        try await SQLiteUserDirectory(database: database, audit: audit).add(
            StaffUser(org: org, name: name, role: role, passwordHash: hash, displayName: displayName), at: now,
            audit: AuditEvent(at: now, org: org, actor: actor, address: address, action: "user.created", target: name, detail: "role=\(role.rawValue)"))
        return try await usersJSON(org)
    }

    private func refuseSelf(_ user: String, actor: String, _ verb: String) throws {
        guard user != actor else { throw PipelineError.forbidden("you cannot \(verb) your own account; ask another admin") }
    }

    private func changeUser(
        _ org: OrgID, _ user: String, actor: String, address: String, action: String, detail: String = "",
        _ change: (SQLiteUserDirectory, AuditEvent) async throws -> Void
    ) async throws {
        let event = AuditEvent(at: Date(), org: org, actor: actor, address: address, action: action, target: user, detail: detail)
        do {
            try await change(SQLiteUserDirectory(database: database, audit: audit), event)
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

/// A pipeline change refused by the checks, with each problem's line in the submitted section.
struct AdminRefusal: Error {
    let message: String
    let issues: [ConfigIssue]
}

extension Hub {
    /// Parameters naming files or programs on the hub's host. Only the operator sets them, in
    /// pipeline.conf on the host; the admin API keeps them as they are.
    static let hostParameters: Set<String> = ["export_dir", "export_key", "ca", "command"]

    /// Checks an admin's new section for `org` and returns the whole new file with its checked
    /// configuration. Refusals carry lines counted from the section's first line:
    /// - the section alone must load (syntax, stages, parameters, order, the HIPAA floor);
    /// - it must define `org` and nothing else;
    /// - `hipaa` changes only through the HIPAA switch (`hipaaSwitch`), which records the BAA
    ///   attestation or confirms the purge;
    /// - host parameters (``hostParameters``) must stay as they are;
    /// - the whole file with the section replaced must load.
    static func check(
        _ section: String, replacing current: String, of org: OrgID, in file: String, file name: String, hipaaSwitch: Bool = false
    ) throws -> (text: String, config: HubConfig) {
        let label = "[org \(org)]"
        var issues: [ConfigIssue] = []
        let parsed = PipelineConfigParser(file: label).parse(section)
        let sections = parsed.sections
        if sections.isEmpty && parsed.issues.isEmpty {
            issues.append(ConfigIssue(file: label, line: 1, message: "expected the section to start with [org \(org)]"))
        }
        for extra in sections where extra.id != org {
            issues.append(ConfigIssue(file: label, line: extra.line, message: "this page edits [org \(org)] only; other organisations are not yours to define here"))
        }
        let currentSection = PipelineConfigParser(file: label).parse(current).sections.first { $0.id == org }
        if let mine = sections.first(where: { $0.id == org }) {
            if !hipaaSwitch, let hipaa = mine.hipaa, let was = currentSection?.hipaa, hipaa.value != was.value {
                issues.append(ConfigIssue(
                    file: label, line: hipaa.line,
                    message: "HIPAA mode is switched with the HIPAA switch, which \(hipaa.value ? "records the BAA attestation" : "first purges the conversations held"); keep 'hipaa = \(was.value ? "on" : "off")' here"))
            }
            issues += hostParameterChanges(in: mine, comparedWith: currentSection, label: label)
        }
        do {
            _ = try StageRegistry.standard.load(section, file: label)
        } catch let error as ConfigError {
            issues += error.issues
        }
        guard issues.isEmpty else {
            throw AdminRefusal(message: issues.count == 1 ? issues[0].message : "\(issues.count) problems; each is listed with its line", issues: ConfigError(issues).issues)
        }
        guard let text = PipelineFile.replacingSection(org, in: file, with: section) else {
            throw missingSection(org)
        }
        do {
            return (text, try StageRegistry.standard.load(text, file: name))
        } catch let error as ConfigError {
            // Lines inside the section are given from its first line; a problem elsewhere in the
            // file (another organisation's section, edited on the host) is named by its file line.
            let start = PipelineFile.section(org, in: text)?.firstLine ?? 1
            let length = section.split(separator: "\n", omittingEmptySubsequences: false).count
            let issues = error.issues.map { issue in
                (start..<(start + length)).contains(issue.line)
                    ? ConfigIssue(file: label, line: issue.line - start + 1, message: issue.message)
                    : ConfigIssue(file: label, line: 0, message: "elsewhere in the file, which only the operator can fix: \(issue)")
            }
            throw AdminRefusal(message: "pipeline.conf as a whole would not load", issues: issues)
        }
    }

    private static func hostParameterChanges(
        in section: PipelineConfigParser.Section, comparedWith current: PipelineConfigParser.Section?, label: String
    ) -> [ConfigIssue] {
        func values(_ statements: [PipelineConfigParser.StageStatement], kind: String) -> [String: String] {
            var result: [String: String] = [:]
            for statement in statements {
                for key in hostParameters {
                    if let value = statement.parameters.value(of: key) { result["\(kind) \(statement.name) \(key)"] = value }
                }
            }
            return result
        }
        let before = values(current?.stages ?? [], kind: "stage").merging(values(current?.integrations ?? [], kind: "integration")) { $1 }
        var issues: [ConfigIssue] = []
        for (kind, statements) in [("stage", section.stages), ("integration", section.integrations)] {
            for statement in statements {
                for key in hostParameters.sorted() {
                    let value = statement.parameters.value(of: key)
                    if value != before["\(kind) \(statement.name) \(key)"], value != nil {
                        issues.append(ConfigIssue(
                            file: label, line: statement.parameters.line,
                            message: "'\(key)=' names a file or program on the hub's host; only the operator can set or change it, in pipeline.conf on the host"))
                    }
                }
            }
        }
        return issues
    }

    /// The section with its `hipaa` line set to `on`, or added after the header if missing.
    static func settingHIPAA(_ on: Bool, in section: String) -> String {
        var lines = section.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let value = "hipaa = \(on ? "on" : "off")"
        if let line = PipelineConfigParser(file: "").parse(section).sections.first?.hipaa?.line {
            lines[line - 1] = value
        } else if let header = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("[org") }) {
            lines.insert(value, at: header + 1)
        }
        return lines.joined(separator: "\n")
    }
}
