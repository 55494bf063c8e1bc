import CareHubCore
import CareHubStages
import CareHubStorage
import Foundation
import Logging
import Synchronization

/// The configuration in force and the organisations' pipelines built from it: reloads, the
/// admin API's changes, what an organisation entering HIPAA mode must go through, and the audit
/// of every change. Requests read the pipeline in force for each frame; a change never drops a
/// connection.
final class HubConfiguration: Sendable {
    private struct State {
        var config: HubConfig
        var pipelines: [OrgID: Pipeline]
        var draining = false
    }

    private let path: String
    private let environment: StageEnvironment
    private let sessions: any SessionStore
    private let events: any PipelineEvents
    private let audit: any AuditLog
    private let database: CareHubDatabase
    private let timer: any StageTimer
    private let pending: PendingWork
    private let logger: Logger
    private let state: Mutex<State>

    init(
        config: HubConfig, path: String, environment: StageEnvironment, events: any PipelineEvents, database: CareHubDatabase,
        timer: any StageTimer, pending: PendingWork, logger: Logger
    ) {
        self.path = path
        self.environment = environment
        self.sessions = environment.sessions
        self.events = events
        self.audit = environment.audit
        self.database = database
        self.timer = timer
        self.pending = pending
        self.logger = logger
        state = Mutex(State(config: config, pipelines: Self.pipelines(for: config, environment: environment, timer: timer)))
    }

    /// The configuration in force.
    var config: HubConfig { state.withLock { $0.config } }

    /// The organisation's pipeline in force, and whether the hub is shutting down.
    func pipeline(for org: OrgID) -> (pipeline: Pipeline?, draining: Bool) {
        state.withLock { ($0.pipelines[org], $0.draining) }
    }

    /// Every pipeline in force (for the ticks).
    var pipelines: [Pipeline] { state.withLock { Array($0.pipelines.values) } }

    /// Whether the hub is shutting down (new frames are refused with `unavailable`).
    var draining: Bool { state.withLock { $0.draining } }

    /// From now on new frames are refused with `unavailable`.
    func beginDraining() { state.withLock { $0.draining = true } }

    /// Re-reads pipeline.conf and applies it to new requests without dropping connections.
    /// If the file is invalid the configuration in force stays, and the errors are returned.
    func reload() async -> Result<HubConfig, ConfigError> {
        do {
            let config = try ConfigLoader.load(path: path)
            for org in await apply(config) {
                // Edited on the host: what the organisation stored before is sealed now, and the
                // log says when it is done.
                pending.start { [self] in
                    do {
                        _ = try await sealEarlierRecords(of: org, actor: ("system", "local"))
                    } catch {
                        logger.error("sealing the records kept before HIPAA mode failed; reload again to retry", metadata: [
                            "org.id": "\(org)", "error.type": "\(type(of: error))",
                        ])
                    }
                }
            }
            logger.info("configuration reloaded", metadata: ["config.orgs": "\(config.orgs.count)"])
            return .success(config)
        } catch let error as ConfigError {
            logger.error("configuration refused; keeping the one in force", metadata: ["config.errors": "\(error.issues.count)"])
            for issue in error.issues { logger.error("\(issue)") }
            return .failure(error)
        } catch {
            let issue = ConfigIssue(file: path, line: 0, message: "\(error)")
            logger.error("\(issue)")
            return .failure(ConfigError([issue]))
        }
    }

    /// Puts a checked configuration in force: new pipelines take the next request, live
    /// connections stay, organisations entering HIPAA mode start over, and each organisation's
    /// change is audited: `admin`'s organisation in the admin's name, any other (edited on the
    /// host and not reloaded yet) as `system`.
    /// Returns the organisations that entered HIPAA mode; their earlier records are sealed by
    /// ``sealEarlierRecords(of:actor:alreadySealed:)``, which the caller runs. The audit rows
    /// of the change are written before it returns.
    @discardableResult
    func apply(_ config: HubConfig, admin: (org: OrgID, user: String, address: String)? = nil) async -> [OrgID] {
        let actor = { (org: OrgID) -> (String, String) in
            admin.map { $0.org == org ? ($0.user, $0.address) : ("system", "local") } ?? ("system", "local")
        }
        let pipelines = Self.pipelines(for: config, environment: environment, timer: timer)
        let previous = state.withLock { state -> HubConfig in
            defer {
                state.config = config
                state.pipelines = pipelines
            }
            return state.config
        }
        let ended = endSessionsOfOrgsEnteringHIPAAMode(from: previous, to: config, actor: actor)
        for event in ended + configurationChanges(from: previous, to: config, actor: actor) {
            do {
                try await audit.record(event)
            } catch {
                logger.error("a configuration change could not be audited", metadata: ["org.id": "\(event.org)", "audit.action": "\(event.action)"])
            }
        }
        return config.orgs.filter { $0.settings.hipaa && previous.org($0.settings.id)?.settings.hipaa == false }.map(\.settings.id)
    }

    /// Seals every message, pre-chat form and file `org` stored in plain text before it entered HIPAA
    /// mode (``EncryptStage/sealStored(org:environment:)``), leaving no plain copy in the
    /// database, its WAL or its free pages, and audits `hipaa.sealed` with the counts.
    func sealEarlierRecords(
        of org: OrgID, actor: (name: String, address: String), alreadySealed: EncryptStage.SealedRecords = .init()
    ) async throws -> EncryptStage.SealedRecords {
        let sealed = try await EncryptStage.sealStored(org: org, environment: environment)
        try await database.truncateLog()
        let total = sealed + alreadySealed
        try await audit.record(AuditEvent(
            at: Date(), org: org, actor: actor.name, address: actor.address, action: "hipaa.sealed", detail: total.detail))
        logger.notice("records kept before HIPAA mode are sealed", metadata: [
            "org.id": "\(org)", "messages": "\(total.messages)", "forms": "\(total.forms)", "files": "\(total.files)",
        ])
        return total
    }

    /// The audit of each organisation whose pipeline changed, with a line diff of its summary
    /// (stage names and parameters only; pipeline.conf holds no PHI).
    private func configurationChanges(from previous: HubConfig, to config: HubConfig, actor: (OrgID) -> (String, String)) -> [AuditEvent] {
        let now = Date()
        var events: [AuditEvent] = []
        let ids = Set(previous.orgs.map(\.settings.id)).union(config.orgs.map(\.settings.id)).sorted()
        for id in ids {
            let old = previous.org(id)?.summaryLines ?? []
            let new = config.org(id)?.summaryLines ?? []
            guard old != new else { continue }
            let diff = old.filter { !new.contains($0) }.map { "-" + $0 } + new.filter { !old.contains($0) }.map { "+" + $0 }
            let (name, address) = actor(id)
            events.append(AuditEvent(at: now, org: id, actor: name, address: address, action: "config.changed", detail: diff.joined(separator: "; ")))
        }
        return events
    }

    /// An organisation switched into HIPAA mode starts over under its rules: every live session of
    /// it (staff and visitors) ends now, and staff log in again with its second factor. Returns
    /// the audit rows of it.
    private func endSessionsOfOrgsEnteringHIPAAMode(from previous: HubConfig, to config: HubConfig, actor: (OrgID) -> (String, String)) -> [AuditEvent] {
        let now = Date()
        var records: [AuditEvent] = []
        for org in config.orgs where org.settings.hipaa && previous.org(org.settings.id)?.settings.hipaa == false {
            let live = sessions.sessions(of: org.settings.id)
            var ended: [AuditEvent] = []
            for session in live where sessions.remove(session.token) != nil {
                if session.principal.isStaff {
                    ended.append(AuditEvent(
                        at: now, org: org.settings.id, actor: session.principal.displayName, address: "",
                        action: "session.expired", detail: "reason=\(SessionExpiry.hipaaMode.rawValue)"))
                }
                events.emit(.sessionExpired(session, .hipaaMode))
            }
            let (name, address) = actor(org.settings.id)
            records += ended + [AuditEvent(
                at: now, org: org.settings.id, actor: name, address: address, action: "hipaa.enabled",
                detail: "sessions_ended=\(live.count)")]
            logger.notice("organisation entered HIPAA mode; its sessions were ended", metadata: ["org.id": "\(org.settings.id)", "sessions": "\(live.count)"])
        }
        return records
    }

    private static func pipelines(for config: HubConfig, environment: StageEnvironment, timer: any StageTimer) -> [OrgID: Pipeline] {
        Dictionary(uniqueKeysWithValues: config.orgs.map { ($0.settings.id, $0.makePipeline(environment: environment, timer: timer)) })
    }
}
