import Foundation

/// Maps the stage names of pipeline.conf to stage types, and turns the file into a checked ``HubConfig``.
///
/// ```swift
/// let registry = StageRegistry([AuthStage.self, IdleStage.self, EncryptStage.self, …])
/// let config = try registry.load(text, file: "pipeline.conf")
/// ```
public struct StageRegistry: Sendable {
    /// What the registry knows of one stage type.
    public struct Entry: Sendable {
        /// The name in pipeline.conf.
        public let name: String
        /// Ordering and floor rules.
        public let rules: StageRules
        let configure: @Sendable (inout StageParameters, OrgSettings) throws -> any StageConfiguration
        let make: @Sendable (any StageConfiguration, OrgSettings, StageEnvironment) -> any Stage
    }

    /// The registered stages, in the order they were registered.
    public let entries: [Entry]

    /// Registers stage types; each name must be unique.
    public init(_ types: [any Stage.Type]) {
        entries = types.map { Self.entry(for: $0) }
        precondition(Set(entries.map(\.name)).count == entries.count, "stage names must be unique")
    }

    private static func entry<S: Stage>(for type: S.Type) -> Entry {
        Entry(
            name: S.name,
            rules: S.rules,
            configure: { parameters, org in try S.Configuration(parameters: &parameters, org: org) },
            make: { configuration, org, environment in
                // The registry only ever pairs a configuration with the stage that parsed it.
                S(configuration: configuration as! S.Configuration, org: org, environment: environment)
            })
    }

    /// The entry named `name`.
    public func entry(named name: String) -> Entry? { entries.first { $0.name == name } }

    /// Parses and checks pipeline.conf as read from disk: a line that is not UTF-8 is reported
    /// as `file:line: invalid UTF-8 …`; otherwise as ``load(_:file:)``.
    public func load(bytes: [UInt8], file: String) throws -> HubConfig {
        switch PipelineConfigParser.text(of: bytes, file: file) {
        case .success(let text): return try load(text, file: file)
        case .failure(let error): throw error
        }
    }

    /// Parses and checks pipeline.conf text: syntax, stage names and parameters, chain order,
    /// required stages and the HIPAA floor. Throws every problem found, each with its line.
    public func load(_ text: String, file: String) throws -> HubConfig {
        let (sections, syntaxIssues) = PipelineConfigParser(file: file).parse(text)
        var issues = syntaxIssues
        var orgs: [ConfiguredOrg] = []
        let known = entries.map(\.name).joined(separator: ", ")

        for section in sections {
            let hipaa = section.hipaa?.value ?? false
            var integrations: [Integration] = []
            for statement in section.integrations {
                var parameters = statement.parameters
                do {
                    let integration = try Integration(name: statement.name, parameters: &parameters, hipaa: hipaa)
                    if let earlier = integrations.first(where: { $0.name == integration.name }) {
                        issues.append(ConfigIssue(file: file, line: integration.line, message: "integration '\(integration.name)' is already declared on line \(earlier.line)"))
                    } else if let unknown = parameters.remainingKeys.first {
                        issues.append(ConfigIssue(file: file, line: integration.line, message: "unknown parameter '\(unknown)' for \(integration.kind == .api ? "an" : "a") \(integration.kind.rawValue) integration"))
                    } else {
                        integrations.append(integration)
                    }
                } catch let error as ConfigError {
                    issues.append(contentsOf: error.issues)
                } catch {
                    issues.append(ConfigIssue(file: file, line: statement.parameters.line, message: "\(error)"))
                }
            }
            var ssoProviders: [SSOProvider] = []
            // Providers whose line was refused: the auth stage naming one is not a second error.
            var refusedProviders: Set<String> = []
            for statement in section.ssoProviders {
                var parameters = statement.parameters
                let before = issues.count
                defer { if issues.count > before { refusedProviders.insert(statement.name) } }
                do {
                    let provider = try SSOProvider(name: statement.name, parameters: &parameters, hipaa: hipaa)
                    if let earlier = ssoProviders.first(where: { $0.name == provider.name }) {
                        issues.append(ConfigIssue(file: file, line: provider.line, message: "sso '\(provider.name)' is already declared on line \(earlier.line)"))
                    } else if let unknown = parameters.remainingKeys.first {
                        issues.append(ConfigIssue(file: file, line: provider.line, message: "unknown parameter '\(unknown)' for an sso provider"))
                    } else if let problem = Self.secretFileProblem(provider.clientSecretFile) {
                        issues.append(ConfigIssue(file: file, line: provider.line, message: "sso '\(provider.name)': \(problem)"))
                    } else {
                        ssoProviders.append(provider)
                    }
                } catch let error as ConfigError {
                    issues.append(contentsOf: error.issues)
                } catch {
                    issues.append(ConfigIssue(file: file, line: statement.parameters.line, message: "\(error)"))
                }
            }
            if hipaa, let origins = section.widgetOrigins {
                for origin in origins.value where origin.hasPrefix("http://") && !ConfigValue.isLoopbackOrigin(origin) {
                    issues.append(ConfigIssue(file: file, line: origins.line, message:
                        "HIPAA organisation may embed its widget only in https:// pages (or http://localhost); found \(origin) in widget_origins"))
                }
            }
            let settings = OrgSettings(
                id: section.id, displayName: section.name?.value ?? section.id.rawValue,
                hipaa: hipaa, staffAccess: section.staffAccess?.value ?? .all, integrations: integrations, sso: ssoProviders,
                limits: section.limits?.value ?? .standard, widgetOrigins: section.widgetOrigins?.value ?? [],
                hours: section.openingHours, attachments: section.attachments?.value)
            if section.hipaa == nil {
                issues.append(ConfigIssue(file: file, line: section.line, message: "expected 'hipaa = on' or 'hipaa = off' in [org \(section.id)]"))
            }
            var stages: [ConfiguredStage] = []
            var seen: [String: Int] = [:]
            for statement in section.stages {
                let line = statement.parameters.line
                guard let entry = entry(named: statement.name) else {
                    issues.append(ConfigIssue(file: file, line: line, message: "unknown stage '\(statement.name)'; expected one of \(known)"))
                    continue
                }
                if let earlier = seen[entry.name] {
                    issues.append(ConfigIssue(file: file, line: line, message: "stage '\(entry.name)' already appears on line \(earlier)"))
                    continue
                }
                seen[entry.name] = line
                for predecessor in entry.rules.after where seen[predecessor] == nil && section.stages.contains(where: { $0.name == predecessor }) {
                    issues.append(ConfigIssue(file: file, line: line, message: "stage '\(entry.name)' must come after '\(predecessor)'"))
                }
                for successor in entry.rules.before where seen[successor] != nil {
                    issues.append(ConfigIssue(file: file, line: line, message: "stage '\(entry.name)' must come before '\(successor)'"))
                }
                var parameters = statement.parameters
                if entry.name == "auth", let named = parameters.value(of: "sso"), refusedProviders.contains(named) { continue }
                do {
                    let configuration = try entry.configure(&parameters, settings)
                    if let unknown = parameters.remainingKeys.first {
                        issues.append(ConfigIssue(file: file, line: line, message: "unknown parameter '\(unknown)' for stage '\(entry.name)'"))
                        continue
                    }
                    stages.append(ConfiguredStage(entry: entry, configuration: configuration, line: line))
                } catch let error as ConfigError {
                    issues.append(contentsOf: error.issues)
                } catch {
                    issues.append(ConfigIssue(file: file, line: line, message: "\(error)"))
                }
            }
            for entry in entries where seen[entry.name] == nil {
                if entry.rules.required {
                    issues.append(ConfigIssue(file: file, line: section.line, message: "[org \(section.id)] must run stage '\(entry.name)'"))
                } else if entry.rules.requiredInHIPAA && settings.hipaa {
                    issues.append(ConfigIssue(file: file, line: section.line, message: "[org \(section.id)] is in HIPAA mode and must run stage '\(entry.name)'"))
                } else if entry.rules.requiredInHIPAAWithAttachments && settings.hipaa, let attachments = section.attachments {
                    issues.append(ConfigIssue(file: file, line: attachments.line, message:
                        "[org \(section.id)] is in HIPAA mode and takes attachments, so it must run stage '\(entry.name)'"))
                }
            }
            if settings.hipaa, let attachments = section.attachments, !entries.contains(where: \.rules.requiredInHIPAAWithAttachments) {
                issues.append(ConfigIssue(file: file, line: attachments.line, message:
                    "[org \(section.id)] is in HIPAA mode and this hub has no malware scanning stage, so it cannot take attachments"))
            }
            orgs.append(ConfiguredOrg(settings: settings, stages: stages))
        }
        if sections.isEmpty && syntaxIssues.isEmpty {
            issues.append(ConfigIssue(file: file, line: 1, message: "expected at least one [org ID] section"))
        }
        guard issues.isEmpty else { throw ConfigError(issues) }
        return HubConfig(file: file, orgs: orgs)
    }
}

extension StageRegistry {
    /// Why the hub could not use `path` as a client secret file, or nil: it must be a readable,
    /// non-empty regular file that other users cannot read.
    static func secretFileProblem(_ path: String) -> String? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              attributes[.type] as? FileAttributeType == .typeRegular
        else { return "client_secret_file \(path) does not exist or is not a regular file" }
        guard FileManager.default.isReadableFile(atPath: path) else { return "client_secret_file \(path) is not readable by this user" }
        if let mode = attributes[.posixPermissions] as? Int, mode & 0o004 != 0 {
            return "client_secret_file \(path) is readable by every user; chmod o-r it"
        }
        guard let size = attributes[.size] as? Int, size > 0, size <= 4096 else { return "client_secret_file \(path) must hold the secret (1 to 4096 bytes)" }
        return nil
    }
}

/// A checked pipeline.conf.
public struct HubConfig: Sendable {
    /// The file it was read from.
    public let file: String
    /// The organisations in file order.
    public let orgs: [ConfiguredOrg]

    /// The organisation with this id.
    public func org(_ id: OrgID) -> ConfiguredOrg? { orgs.first { $0.settings.id == id } }

    /// The `config check --json` summary:
    /// `{"orgs":[{"id":…,"name":…,"hipaa":…,"staffAccess":…,"widgetOrigins":[…],"limits":{…},"hours":TEXT|null,"timeZone":TZ|null,
    /// "attachments":{"maxBytes":N,"types":[…]}|null,"stages":[…]}]}`,
    /// where `hours` reads as ``OpeningHours/description`` (`"Mon–Fri 08:00–18:00"`).
    public func summaryJSON() -> String {
        var writer = JSONWriter()
        writer.array("orgs", orgs) { element, org in
            element.field("id", org.settings.id.rawValue)
            element.field("name", org.settings.displayName)
            element.field("hipaa", org.settings.hipaa)
            element.field("staffAccess", org.settings.staffAccess.rawValue)
            element.strings("widgetOrigins", org.settings.widgetOrigins)
            element.object("limits") { limits in
                let values = org.settings.limits
                limits.field("conversationsPerMinute", Int64(values.conversationsPerMinute))
                limits.field("conversationsPerAddressPerMinute", Int64(values.conversationsPerAddressPerMinute))
                limits.field("messagesPerSecond", Int64(values.messagesPerSecond))
                limits.field("messageBurst", Int64(values.messageBurst))
            }
            if let hours = org.settings.hours {
                element.field("hours", hours.description)
                element.field("timeZone", hours.timeZoneIdentifier)
            } else {
                element.null("hours")
                element.null("timeZone")
            }
            if let attachments = org.settings.attachments {
                element.object("attachments") { object in
                    object.field("maxBytes", Int64(attachments.maxBytes))
                    object.strings("types", attachments.types)
                }
            } else {
                element.null("attachments")
            }
            element.strings("stages", org.stages.map(\.name))
        }
        return writer.finish()
    }

    /// A human summary, one organisation per paragraph.
    public func summaryText() -> String {
        var lines: [String] = []
        for org in orgs {
            lines.append("\(org.settings.id) — \(org.settings.displayName) — HIPAA mode \(org.settings.hipaa ? "on" : "off")")
            lines += org.summaryLines.dropFirst().map { "  " + $0 }
        }
        return lines.joined(separator: "\n")
    }
}

/// One organisation's checked settings and stage chain.
public struct ConfiguredOrg: Sendable {
    /// The organisation's settings.
    public let settings: OrgSettings
    /// Its stages in chain order.
    public let stages: [ConfiguredStage]

    /// The organisation as `key=value` lines (settings, stages, integrations), for summaries and
    /// the audited diff of a configuration change. pipeline.conf holds no PHI.
    public var summaryLines: [String] {
        var lines = ["hipaa=\(settings.hipaa ? "on" : "off")"]
        if settings.staffAccess != .all { lines.append("staff_access=\(settings.staffAccess.rawValue)") }
        if !settings.widgetOrigins.isEmpty { lines.append("widget_origins=\(settings.widgetOrigins.joined(separator: ","))") }
        if let hours = settings.hours {
            lines.append("hours=\(hours.configText)")
            lines.append("timezone=\(hours.timeZoneIdentifier)")
        }
        if settings.limits != .standard {
            let limits = settings.limits
            lines.append("limits conversations_per_minute=\(limits.conversationsPerMinute) conversations_per_address_per_minute=\(limits.conversationsPerAddressPerMinute) messages_per_second=\(limits.messagesPerSecond) message_burst=\(limits.messageBurst)")
        }
        if let attachments = settings.attachments {
            lines.append("attachments max_size=\(attachments.maxBytes)B types=\(attachments.types.joined(separator: ","))")
        }
        lines += stages.map { ([$0.name] + $0.configuration.summary).joined(separator: " ") }
        lines += settings.integrations.map { integration in
            var words = ["integration", integration.name, "type=\(integration.kind.rawValue)"]
            if let url = integration.url { words.append("url=\(url)") }
            if let ca = integration.caFile { words.append("ca=\(ca)") }
            if let to = integration.to { words.append("to=\(to)") }
            words.append("baa=\(integration.baa ? "yes" : "no")")
            return words.joined(separator: " ")
        }
        lines += settings.sso.map(\.summary)
        return lines
    }

    /// Builds the organisation's pipeline on the given ports.
    public func makePipeline(environment: StageEnvironment, timer: (any StageTimer)? = nil) -> Pipeline {
        Pipeline(org: settings, stages: stages.map { $0.make(org: settings, environment: environment) }, timer: timer)
    }
}

/// One checked `stage` line.
public struct ConfiguredStage: Sendable {
    let entry: StageRegistry.Entry
    /// The parsed parameters.
    public let configuration: any StageConfiguration
    /// The line it was read from.
    public let line: Int

    /// The stage name.
    public var name: String { entry.name }

    /// Creates the stage instance.
    public func make(org: OrgSettings, environment: StageEnvironment) -> any Stage {
        entry.make(configuration, org, environment)
    }
}
