import CareHubCore
import CareHubStages
import Foundation

/// A pipeline change refused by the checks, with each problem's line in the submitted section.
struct AdminRefusal: Error {
    let message: String
    let issues: [ConfigIssue]
}

/// The checks on an admin's change to pipeline.conf: pure functions of the texts, with no state.
enum PipelineEdit {
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
            throw PipelineEdit.missingSection(org)
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

    /// The refusal when pipeline.conf no longer has the organisation's section.
    static func missingSection(_ org: OrgID) -> PipelineError {
        PipelineError(.conflict, "pipeline.conf on disk no longer has an [org \(org)] section; ask the operator")
    }
}
