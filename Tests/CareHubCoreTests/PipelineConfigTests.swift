import CareHubCore
import CareHubStages
import Foundation
import Testing

/// The issues a pipeline.conf text (named `test.conf`) produces, as `file:line: message` strings.
func configIssues(_ text: String) -> [String] {
    do {
        _ = try StageRegistry.standard.load(text, file: "test.conf")
        return []
    } catch let error as ConfigError {
        return error.issues.map(\.description)
    } catch {
        return ["unexpected \(error)"]
    }
}

@Suite("pipeline.conf")
struct PipelineConfigTests {
    let registry = StageRegistry.standard

    func load(_ text: String) throws -> HubConfig {
        try registry.load(text, file: "test.conf")
    }

    func issues(_ text: String) -> [String] { configIssues(text) }

    static let hipaaOrg = """
        [org clinic]
        name = Clinic
        hipaa = on
        stage auth
        stage idle timeout=10m
        stage encrypt
        stage store
        stage purge
        stage fanout notify=count via=pager
        integration pager type=webhook url=https://pager.example/x baa=yes
        """

    @Test func theShippedFileLoadsWithBothDemoOrganisations() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../pipeline.conf")
        let config = try registry.load(String(contentsOf: url, encoding: .utf8), file: "pipeline.conf")
        let hipaa = config.orgs.map { ($0.settings.id.rawValue, $0.settings.hipaa) }
        #expect(hipaa.map(\.0) == ["riverside-clinic", "lotus-wellness"])
        #expect(hipaa.map(\.1) == [true, false])
        #expect(config.org(OrgID("riverside-clinic"))?.stages.map(\.name) == ["auth", "idle", "encrypt", "store", "purge", "fanout"])
    }

    @Test func summaryJSONIsWhatToolsRead() throws {
        let config = try load(Self.hipaaOrg)
        let object = try JSONSerialization.jsonObject(with: Data(config.summaryJSON().utf8)) as? [String: Any]
        let orgs = try #require(object?["orgs"] as? [[String: Any]])
        #expect(orgs.count == 1)
        #expect(orgs[0]["id"] as? String == "clinic")
        #expect(orgs[0]["hipaa"] as? Bool == true)
        #expect(orgs[0]["stages"] as? [String] == ["auth", "idle", "encrypt", "store", "purge", "fanout"])
    }

    @Test func commentsBlankLinesAndParametersAreRead() throws {
        let config = try load("""
            # a comment
            [org studio]   # trailing comment
            name = "Lotus Studio"
            hipaa = off

            stage auth visitors=off
            stage store history=5
            stage fanout notify=preview preview_chars=12 via=hook
            integration hook type=webhook url=http://hook.example/x baa=no
            """)
        let org = try #require(config.orgs.first)
        #expect(org.settings.displayName == "Lotus Studio")
        #expect(org.stages.map(\.name) == ["auth", "store", "fanout"])
        #expect(org.stages[1].configuration.summary == ["history=5"])
        #expect(org.stages[2].configuration.summary == ["notify=preview", "preview_chars=12", "via=hook"])
        #expect(org.settings.integration("hook")?.url?.description == "http://hook.example/x")
        #expect(org.stages.map(\.line) == [6, 7, 8])
    }

    @Test func errorsNameTheFileAndLine() {
        #expect(issues("stage auth") == ["test.conf:1: expected an [org ID] section header before 'stage'"])
        #expect(issues("[org Clinic!]\nhipaa = on") .first == "test.conf:1: expected an organisation id of 1-64 lowercase letters, digits and dashes, found 'Clinic!'")
        #expect(issues("[org a]\nhipaa = maybe\nstage auth\nstage store\nstage fanout").contains("test.conf:2: expected 'hipaa = on' or 'hipaa = off', found 'hipaa = maybe'"))
        #expect(issues("[org a]\nhipaa = off\nstage auth\nstage teleport\nstage store\nstage fanout")
            == ["test.conf:4: unknown stage 'teleport'; expected one of auth, idle, scan, encrypt, store, purge, fanout"])
        #expect(issues("[org a]\nhipaa = off\nstage auth colour=blue\nstage store\nstage fanout")
            == ["test.conf:3: unknown parameter 'colour' for stage 'auth'"])
        #expect(issues("[org a]\nhipaa = off\nstage auth\nstage store history=lots\nstage fanout").count == 1)
        #expect(issues("[org a]\nhipaa = off\nstage auth\nstage store history=lots\nstage fanout")[0].hasPrefix("test.conf:4: "))
    }

    @Test func orderDuplicatesAndRequiredStagesAreChecked() {
        #expect(issues("[org a]\nhipaa = off\nstage store\nstage auth\nstage fanout")
            == ["test.conf:3: stage 'store' must come after 'auth'"])
        #expect(issues("[org a]\nhipaa = off\nstage auth\nstage auth\nstage store\nstage fanout")
            == ["test.conf:4: stage 'auth' already appears on line 3"])
        #expect(issues("[org a]\nhipaa = off\nstage auth\nstage fanout")
            == ["test.conf:1: [org a] must run stage 'store'"])
        #expect(issues("[org a]\nstage auth\nstage store\nstage fanout")
            == ["test.conf:1: expected 'hipaa = on' or 'hipaa = off' in [org a]"])
    }

    @Test func hipaaModeDemandsItsSafeguards() {
        #expect(issues(Self.hipaaOrg).isEmpty)
        let withoutEncrypt = Self.hipaaOrg.replacingOccurrences(of: "stage encrypt\n", with: "")
        #expect(issues(withoutEncrypt) == ["test.conf:1: [org clinic] is in HIPAA mode and must run stage 'encrypt'"])
        let longIdle = Self.hipaaOrg.replacingOccurrences(of: "timeout=10m", with: "timeout=30m")
        #expect(issues(longIdle).count == 1)
        #expect(issues(longIdle).first?.hasPrefix("test.conf:5: HIPAA organisation 'clinic' needs idle timeout=15m or less") == true)
        let optional2FA = Self.hipaaOrg.replacingOccurrences(of: "stage auth", with: "stage auth twofactor=optional")
        #expect(issues(optional2FA) == ["test.conf:4: HIPAA organisation 'clinic' needs twofactor=required, found twofactor=optional"])
        let preview = Self.hipaaOrg.replacingOccurrences(of: "notify=count", with: "notify=preview")
        #expect(issues(preview).first?.hasPrefix("test.conf:9: HIPAA organisation 'clinic' may not put message text in notifications") == true)
        // The same settings are fine for an organisation outside HIPAA mode.
        let relaxed = preview.replacingOccurrences(of: "stage auth", with: "stage auth twofactor=off").replacingOccurrences(of: "hipaa = on", with: "hipaa = off")
            .replacingOccurrences(of: "timeout=10m", with: "timeout=30m").replacingOccurrences(of: "https://", with: "http://").replacingOccurrences(of: "baa=yes", with: "baa=no")
        #expect(issues(relaxed).isEmpty)
    }

    @Test func everyProblemInAFileIsReportedAtOnce() {
        let found = issues("[org a]\nhipaa = off\nstage auth bogus=1\nstage store history=-1\n[org a]\nhipaa = on")
        #expect(found.count >= 3)
        #expect(found.contains("test.conf:5: organisation 'a' is already defined on line 1"))
    }

    @Test func anEmptyFileIsAnError() {
        #expect(issues("# nothing here\n") == ["test.conf:1: expected at least one [org ID] section"])
    }
}

@Suite("integrations in pipeline.conf")
struct IntegrationConfigTests {
    func issues(_ text: String) -> [String] { configIssues(text) }

    func hipaa(_ lines: String, fanout: String = "stage fanout") -> String {
        """
        [org clinic]
        hipaa = on
        stage auth
        stage idle timeout=10m
        stage encrypt
        stage store
        stage purge
        \(fanout)
        \(lines)
        """
    }

    @Test func aHIPAAOrganisationRefusesNonBAAAndPlainHTTPIntegrations() {
        #expect(issues(hipaa("integration pager type=webhook url=https://p.example/x baa=yes", fanout: "stage fanout notify=count via=pager")) == [])
        #expect(issues(hipaa("integration pager type=webhook url=https://p.example/x baa=no")) == [
            "test.conf:9: HIPAA organisation may not declare integration 'pager' without a BAA (baa=no); it would receive nothing",
        ])
        #expect(issues(hipaa("integration pager type=webhook url=http://p.example/x baa=yes")) == [
            "test.conf:9: HIPAA organisation may not send to a plain-http webhook; expected url=https://…, found url=http://p.example/x",
        ])
        #expect(issues(hipaa("integration pager type=webhook url=https://p.example/x")) == [
            "test.conf:9: integration 'pager' must say baa=yes or baa=no",
        ])
    }

    @Test func anAPIClientIsAnIntegrationThatReceivesNothing() {
        // In a HIPAA organisation it may lack a BAA: its tokens then reach no PHI.
        #expect(issues(hipaa("integration ehr type=api baa=no")) == [])
        #expect(issues(hipaa("integration ehr type=api baa=yes url=https://ehr.example/x")) == [
            "test.conf:9: unknown parameter 'url' for an api integration",
        ])
        #expect(issues(hipaa("integration ehr type=api baa=yes", fanout: "stage fanout notify=count via=ehr")) == [
            "test.conf:8: via names 'ehr', an API client; notifications go to webhook and email integrations",
        ])
    }

    @Test func referencesAndParametersAreChecked() {
        #expect(issues(hipaa("integration pager type=sms baa=yes")) == ["test.conf:9: expected type=webhook|email|api, found type=sms"])
        #expect(issues(hipaa("integration pager type=webhook url=ftp://x baa=yes")) == [
            "test.conf:9: expected url to be http://host[:port]/path or https://host[:port]/path, found url=ftp://x",
        ])
        #expect(issues(hipaa("integration pager type=webhook url=https://p.example/x baa=yes", fanout: "stage fanout notify=count via=pagr")) == [
            "test.conf:8: via names 'pagr', which is not an integration of [org clinic]",
        ])
        #expect(issues(hipaa("", fanout: "stage fanout notify=count")) == [
            "test.conf:8: notify=count needs via=INTEGRATION[,INTEGRATION…] naming where notifications go",
        ])
        #expect(issues(hipaa("integration pager type=webhook url=https://p.example/x baa=yes mode=fast")) == [
            "test.conf:9: unknown parameter 'mode' for a webhook integration",
        ])
    }

    @Test func exportsGoOnlyToBAAHTTPSWebhooksOrAnAbsoluteDirectory() {
        let records = "integration pager type=webhook url=https://p.example/x baa=yes"
        #expect(issues(hipaa(records).replacingOccurrences(of: "stage purge", with: "stage purge export_to=pager")) == [])
        #expect(issues(hipaa(records).replacingOccurrences(of: "stage purge", with: "stage purge export_dir=exports")) == [
            "test.conf:7: expected export_dir to be an absolute path, found export_dir=exports",
        ])
        #expect(issues(hipaa(records).replacingOccurrences(of: "stage purge", with: "stage purge export_key=/k.pem")) == [
            "test.conf:7: export_key needs export_dir",
        ])
        #expect(issues(hipaa(records).replacingOccurrences(of: "stage purge", with: "stage purge export_dir=/exports")) == [
            "test.conf:7: HIPAA organisation 'clinic' must encrypt exports: add export_key=/path/to/certificate.pem",
        ])
        #expect(issues(hipaa(records).replacingOccurrences(of: "stage purge", with: "stage purge export_dir=/exports export_key=/k.pem")) == [])
        let open = """
            [org studio]
            hipaa = off
            integration hook type=webhook url=http://h.example/x baa=no
            stage auth
            stage store
            stage purge export_to=hook
            stage fanout
            """
        #expect(issues(open) == ["test.conf:6: export_to must name an https:// webhook integration with baa=yes; 'hook' is not one"])
    }
}
