import CareHubCore
@testable import CareHubServer
import Foundation
import Testing

/// pipeline.conf as the admin API edits it: sections, atomic writes with kept versions, and the
/// checks on an admin's new section.
@Suite("Admin edits of pipeline.conf")
struct PipelineFileTests {
    static let file = """
        # preamble comment
        [org clinic]
        name  = Clinic
        hipaa = on
        stage auth     twofactor=required
        stage idle     timeout=15m
        stage encrypt
        stage store    history=100
        stage purge    on=end export_dir=/var/lib/exports export_key=/etc/carehub/export.pem
        stage fanout   notify=none

        [org studio]
        name  = Studio
        hipaa = off
        stage auth
        stage store
        stage fanout
        """

    static var clinic: String { PipelineFile.section(OrgID("clinic"), in: file)!.text }

    @Test func aSectionRunsFromItsHeaderToTheNextLessTrailingBlankLines() throws {
        let section = try #require(PipelineFile.section(OrgID("clinic"), in: Self.file))
        #expect(section.firstLine == 2)
        #expect(section.text.hasPrefix("[org clinic]\n") && section.text.hasSuffix("stage fanout   notify=none"))
        #expect(PipelineFile.section(OrgID("studio"), in: Self.file)?.firstLine == 12)
        #expect(PipelineFile.section(OrgID("nobody"), in: Self.file) == nil)
    }

    @Test func replacingASectionLeavesEveryOtherLineAsItWas() throws {
        let edited = Self.clinic.replacingOccurrences(of: "timeout=15m", with: "timeout=10m")
        let text = try #require(PipelineFile.replacingSection(OrgID("clinic"), in: Self.file, with: edited + "\n\n\n"))
        #expect(text == Self.file.replacingOccurrences(of: "timeout=15m", with: "timeout=10m"))
    }

    @Test func writesAtomicallyKeepingThePreviousVersionAndThePermissions() throws {
        let directory = NSTemporaryDirectory() + "carehub-pipeline-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/pipeline.conf"
        try Self.file.write(toFile: path, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: path)
        let file = PipelineFile(path: path)
        let before = try file.read()
        #expect(before.version.count == 64)

        let kept = try file.write("[org clinic]\nhipaa = off\nstage auth\n", replacing: before, at: Date(timeIntervalSince1970: 1_800_000_000), org: OrgID("clinic"), author: "dr.admin")
        #expect(kept == "20270115T080000.000Z~clinic~dr.admin.conf")
        #expect(try file.read().text == "[org clinic]\nhipaa = off\nstage auth\n")
        #expect(try file.read().version != before.version)
        #expect(try String(contentsOfFile: file.historyDirectory + "/" + kept, encoding: .utf8) == Self.file)
        #expect(file.versions(of: OrgID("clinic")) == [kept])
        #expect(kept.hasSuffix("~clinic~dr.admin.conf"))
        // Another organisation's admin sees none of this organisation's changes, nor who made them.
        #expect(file.versions(of: OrgID("studio")) == [])
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o640)
        let keptMode = try FileManager.default.attributesOfItem(atPath: file.historyDirectory + "/" + kept)[.posixPermissions] as? Int
        #expect(keptMode == 0o600)
        // No temporary file is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["pipeline.conf", "pipeline.conf.history"])
    }

    @Test func aValidEditReturnsTheWholeNewFileAndItsConfiguration() throws {
        let edited = Self.clinic.replacingOccurrences(of: "history=100", with: "history=50")
        let checked = try Hub.check(edited, replacing: Self.clinic, of: OrgID("clinic"), in: Self.file, file: "pipeline.conf")
        #expect(checked.text == Self.file.replacingOccurrences(of: "history=100", with: "history=50"))
        #expect(checked.config.orgs.map(\.settings.id.rawValue) == ["clinic", "studio"])
    }

    @Test func theHIPAAFloorRefusesWithLinesCountedFromTheSection() {
        let noEncrypt = Self.clinic.replacingOccurrences(of: "stage encrypt\n", with: "")
        let refusal = refused(noEncrypt)
        #expect(refusal?.issues.map(\.line) == [1])
        #expect(refusal?.issues.first?.message.contains("must run stage 'encrypt'") == true)
        let slow = refused(Self.clinic.replacingOccurrences(of: "timeout=15m", with: "timeout=1h"))
        #expect(slow?.issues.map(\.line) == [5])
    }

    @Test func hipaaModeOrganisationsAndHostParametersAreNotTheSectionsToChange() {
        let switched = refused(Self.clinic.replacingOccurrences(of: "hipaa = on", with: "hipaa = off"))
        #expect(switched?.issues.map(\.line) == [3])
        #expect(switched?.issues.first?.message.contains("HIPAA switch") == true)

        let moved = refused(Self.clinic.replacingOccurrences(of: "export_dir=/var/lib/exports", with: "export_dir=/tmp"))
        #expect(moved?.issues.map(\.line) == [8])
        #expect(moved?.issues.first?.message.contains("only the operator") == true)
        let program = refused(Self.clinic + "\nintegration desk type=email to=desk@example.org baa=yes command=/bin/sh")
        #expect(program?.issues.contains { $0.line == 10 && $0.message.contains("'command='") } == true)

        let other = refused(Self.clinic + "\n[org studio]\nhipaa = off\nstage auth\nstage store\nstage fanout")
        #expect(other?.issues.contains { $0.line == 10 && $0.message.contains("[org clinic] only") } == true)
        let renamed = refused(Self.clinic.replacingOccurrences(of: "[org clinic]", with: "[org elsewhere]"))
        #expect(renamed?.issues.isEmpty == false)

        // Removing a host parameter is allowed: the exports simply stop.
        let withoutExport = Self.clinic.replacingOccurrences(of: " export_dir=/var/lib/exports export_key=/etc/carehub/export.pem", with: "")
        #expect(refused(withoutExport) == nil)
    }

    @Test func theHIPAASwitchRewritesOnlyTheHIPAALine() throws {
        let off = Hub.settingHIPAA(false, in: Self.clinic)
        #expect(off == Self.clinic.replacingOccurrences(of: "hipaa = on", with: "hipaa = off"))
        #expect(Hub.settingHIPAA(true, in: "[org x]\nstage auth") == "[org x]\nhipaa = on\nstage auth")
        #expect(throws: Never.self) {
            try Hub.check(off, replacing: Self.clinic, of: OrgID("clinic"), in: Self.file, file: "pipeline.conf", hipaaSwitch: true)
        }
    }

    @Test func aProblemElsewhereInTheFileIsNamedByItsFileLine() throws {
        let broken = Self.file.replacingOccurrences(of: "stage store\nstage fanout", with: "stage fanout")
        #expect(throws: AdminRefusal.self) {
            try Hub.check(Self.clinic, replacing: Self.clinic, of: OrgID("clinic"), in: broken, file: "pipeline.conf")
        }
        do {
            _ = try Hub.check(Self.clinic, replacing: Self.clinic, of: OrgID("clinic"), in: broken, file: "pipeline.conf")
        } catch let refusal as AdminRefusal {
            #expect(refusal.issues.map(\.line) == [0])
            #expect(refusal.issues.first?.message == "elsewhere in the file, which only the operator can fix: pipeline.conf:12: [org studio] must run stage 'store'")
        }
    }

    @Test func anAdminSetsOpeningHoursAndIsRefusedAsTheFileWouldBe() throws {
        let withHours = Self.clinic.replacingOccurrences(of: "hipaa = on\n", with: "hipaa = on\nhours    = mon-fri 08:00-18:00\ntimezone = America/Chicago\n")
        let checked = try Hub.check(withHours, replacing: Self.clinic, of: OrgID("clinic"), in: Self.file, file: "pipeline.conf")
        #expect(checked.config.org(OrgID("clinic"))?.settings.hours?.description == "Mon–Fri 08:00–18:00")
        #expect(checked.config.org(OrgID("clinic"))?.summaryLines.contains("timezone=America/Chicago") == true)
        let overnight = refused(withHours.replacingOccurrences(of: "08:00-18:00", with: "22:00-06:00"))
        #expect(overnight?.issues.map(\.description) == [
            "[org clinic]:4: '22:00-06:00' crosses midnight; write it as two groups, e.g. 'mon-fri 22:00-24:00, tue-sat 00:00-06:00'",
        ])
        let noZone = refused(withHours.replacingOccurrences(of: "timezone = America/Chicago\n", with: ""))
        #expect(noZone?.issues.map(\.line) == [4])
        #expect(noZone?.issues.first?.message.hasPrefix("'hours' needs 'timezone = …'") == true)
    }

    private func refused(_ section: String) -> AdminRefusal? {
        do {
            _ = try Hub.check(section, replacing: Self.clinic, of: OrgID("clinic"), in: Self.file, file: "pipeline.conf")
            return nil
        } catch let refusal as AdminRefusal {
            return refusal
        } catch {
            return AdminRefusal(message: "unexpected \(error)", issues: [])
        }
    }
}
