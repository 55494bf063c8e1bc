import CareHubCore
import CareHubStages
import Foundation
import Testing

/// What an organisation takes as attachments: the `attachments` line, and the type read from a
/// file's first bytes.
@Suite("attachment settings")
struct AttachmentSettingsTests {
    static let org = """
        [org lotus]
        hipaa = off
        ATTACHMENTS
        stage auth
        stage idle timeout=60m
        stage store
        stage fanout
        """

    func load(_ line: String) throws -> OrgSettings {
        let text = Self.org.replacingOccurrences(of: "ATTACHMENTS", with: line)
        return try #require(try StageRegistry.standard.load(text, file: "test.conf").orgs.first).settings
    }

    func issues(_ line: String) -> [String] { configIssues(Self.org.replacingOccurrences(of: "ATTACHMENTS", with: line)) }

    @Test func withoutTheLineAnOrganisationTakesNoAttachments() throws {
        #expect(try load("").attachments == nil)
    }

    @Test func theLineAloneTakesImagesAndPDFUpToTenMegabytes() throws {
        let attachments = try #require(try load("attachments").attachments)
        #expect(attachments.maxBytes == 10_000_000)
        #expect(attachments.types == ["image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"])
    }

    @Test func sizesAndTypesAreTheOrganisations() throws {
        let attachments = try #require(try load("attachments max_size=512KiB types=image/png,application/pdf").attachments)
        #expect(attachments.maxBytes == 512 * 1024)
        #expect(attachments.types == ["image/png", "application/pdf"])
        #expect(try load("attachments max_size=2MB").attachments?.maxBytes == 2_000_000)
        #expect(try load("attachments max_size=900B").attachments?.maxBytes == 900)
    }

    @Test func badValuesAreIssuesWithTheirLine() {
        let size = "test.conf:3: expected max_size to be a size from 1 byte to 50MB (such as 512KB or 10MB), found max_size="
        for value in ["0", "51MB", "-1MB", "10GB", "ten", "1e3", "99999999999999999999MB", ""] {
            #expect(issues("attachments max_size=\(value)") == [size + value], "\(value)")
        }
        #expect(issues("attachments types=image/png,text/html") == [
            "test.conf:3: unknown attachment type 'text/html'; expected some of image/jpeg, image/png, image/gif, image/webp, application/pdf",
        ])
        #expect(issues("attachments colour=blue") == ["test.conf:3: unknown attachments setting 'colour'; expected max_size or types"])
        #expect(issues("attachments max_size=1MB max_size=2MB") == ["test.conf:3: 'max_size' is given twice"])
        #expect(issues("attachments\nattachments") == ["test.conf:4: 'attachments' is already set on line 3"])
    }

    @Test func theSummaryShowsWhatIsTaken() throws {
        let text = Self.org.replacingOccurrences(of: "ATTACHMENTS", with: "attachments max_size=1MB types=image/png")
        let config = try StageRegistry.standard.load(text, file: "test.conf")
        #expect(config.summaryJSON().contains(#""attachments":{"maxBytes":1000000,"types":["image/png"]}"#))
        #expect(config.orgs[0].summaryLines.contains("attachments max_size=1000000B types=image/png"))
    }

    @Test func aFilesTypeComesFromItsFirstBytes() {
        #expect(ContentSniffer.type(of: [0xFF, 0xD8, 0xFF, 0xE0] + Array(repeating: 0, count: 8)) == "image/jpeg")
        #expect(ContentSniffer.type(of: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]) == "image/png")
        #expect(ContentSniffer.type(of: Array("GIF89a......".utf8)) == "image/gif")
        #expect(ContentSniffer.type(of: Array("RIFF\u{0}\u{0}\u{0}\u{0}WEBP".utf8)) == "image/webp")
        #expect(ContentSniffer.type(of: Array("%PDF-1.7\n...".utf8)) == "application/pdf")
        // A name or a header would say otherwise; the bytes decide.
        #expect(ContentSniffer.type(of: Array("<html><script>".utf8)) == nil)
        #expect(ContentSniffer.type(of: Array("RIFF\u{0}\u{0}\u{0}\u{0}WAVE".utf8)) == nil)
        #expect(ContentSniffer.type(of: [0x89, 0x50, 0x4E]) == nil)
        #expect(ContentSniffer.type(of: []) == nil)
    }

    @Test func sizesReadAsPeopleWriteThem() {
        #expect(ByteCountText.describe(10_000_000) == "10 MB")
        #expect(ByteCountText.describe(1_234_567) == "1.2 MB")
        #expect(ByteCountText.describe(64_000) == "64 KB")
        #expect(ByteCountText.describe(980) == "980 bytes")
        #expect(ByteCountText.describe(1) == "1 byte")
        #expect(ConfigValue.byteCount("1MiB") == 1_048_576)
        #expect(ConfigValue.byteCount("1TB") == nil)
    }

    @Test func attachmentIdsFromOutsideMustHaveTheirForm() {
        let id = AttachmentID.random()
        #expect(AttachmentID(checking: id.rawValue) == id)
        for text in ["", "a_", "a_" + String(repeating: "0", count: 31), "a_" + String(repeating: "G", count: 32), "b_" + String(repeating: "0", count: 32),
                     "a_" + String(repeating: "0", count: 32) + "/../x"] {
            #expect(AttachmentID(checking: text) == nil, "\(text)")
        }
    }
}

/// A HIPAA organisation takes files only through a malware scan, placed before the store.
@Suite("attachments in HIPAA mode")
struct HIPAAAttachmentTests {
    static let riverside = """
        [org riverside]
        hipaa = on
        attachments
        stage auth twofactor=required
        stage idle timeout=15m
        SCAN
        stage encrypt
        stage store
        stage fanout
        """

    func issues(scan: String) -> [String] { configIssues(Self.riverside.replacingOccurrences(of: "SCAN", with: scan)) }

    @Test func aHIPAAOrganisationThatTakesAttachmentsMustScanThem() {
        #expect(issues(scan: "") == ["test.conf:3: [org riverside] is in HIPAA mode and takes attachments, so it must run stage 'scan'"])
        #expect(issues(scan: "stage scan engine=clamd socket=/run/clamav/clamd.ctl on_error=hold") == [])
        // Without the attachments line the stage is not needed.
        #expect(configIssues(Self.riverside.replacingOccurrences(of: "SCAN", with: "").replacingOccurrences(of: "attachments\n", with: "")) == [])
    }

    @Test func theScanComesBeforeTheStoreThatTakesTheBytes() {
        let late = Self.riverside.replacingOccurrences(of: "SCAN\n", with: "")
            .replacingOccurrences(of: "stage fanout", with: "stage scan\nstage fanout")
        #expect(configIssues(late) == ["test.conf:8: stage 'scan' must come before 'store'"])
    }

    @Test func theScannersAddressAndPolicyAreChecked() throws {
        #expect(issues(scan: "stage scan engine=sophos") == ["test.conf:6: expected engine=clamd, found engine=sophos"])
        #expect(issues(scan: "stage scan on_error=ignore") == ["test.conf:6: expected on_error=reject|hold, found on_error=ignore"])
        let socket = "test.conf:6: expected socket= to be an absolute Unix socket path (at most 107 bytes) or host:port, found socket="
        for value in ["clamd.ctl", "localhost", "host:0", "host:70000", "[::1]", "::1:3310", "/" + String(repeating: "s", count: 107), "bad_host:3310"] {
            #expect(issues(scan: "stage scan socket=\(value)") == [socket + value], "\(value)")
        }
        let text = Self.riverside.replacingOccurrences(of: "SCAN", with: "stage scan socket=[::1]:3310")
        let org = try StageRegistry.standard.load(text, file: "test.conf").orgs[0]
        #expect(org.summaryLines.contains("scan engine=clamd socket=[::1]:3310 on_error=reject"))
        #expect(ScannerAddress(parsing: "127.0.0.1:3310") == .tcp(host: "127.0.0.1", port: 3310))
        #expect(ScannerAddress(parsing: "/run/clamav/clamd.ctl") == .unix(path: "/run/clamav/clamd.ctl"))
    }
}
