import CareHubCore
import CareHubStages
import Foundation
import Testing

@Suite("pipeline.conf: sso providers")
struct SSOConfigTests {
    /// A client secret file with the given mode, in a fresh temporary directory.
    static func secretFile(mode: Int = 0o600) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("carehub-sso-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("secret")
        try Data("s3cret\n".utf8).write(to: file)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file.path)
        return file.path
    }

    /// A HIPAA (or not) organisation with one `sso` line (line 4) and `stage auth … sso=idp` (line 5).
    static func org(_ sso: String, hipaa: Bool = true, auth: String = "sso=idp") -> String {
        """
        [org clinic]
        name = Clinic
        hipaa = \(hipaa ? "on" : "off")
        \(sso)
        stage auth \(auth)
        stage idle timeout=10m lifetime=8h
        stage encrypt
        stage store
        stage fanout
        """
    }

    @Test func aProviderLoadsAndItsSummaryNamesTheSecretsFileNotTheSecret() throws {
        let secret = try Self.secretFile()
        let config = try StageRegistry.standard.load(Self.org(
            "sso idp issuer=https://login.example.org/tenant client_id=carehub client_secret_file=\(secret) scopes=profile,email claim_role=groups admin_group=carehub-admins accounts=create acr=urn:example:mfa"),
            file: "test.conf")
        let org = try #require(config.orgs.first)
        let provider = try #require(org.settings.ssoProvider("idp"))
        #expect(provider.scopes == ["openid", "profile", "email"])
        #expect(provider.userClaim == "preferred_username" && provider.accounts == .create && provider.amr == SSOProvider.defaultAMR)
        #expect(provider.showsSecondFactor(amr: ["pwd", "otp"], acr: nil))
        #expect(provider.showsSecondFactor(amr: ["pwd"], acr: "urn:example:mfa"))
        #expect(!provider.showsSecondFactor(amr: ["pwd"], acr: nil))
        let summary = org.summaryLines.joined(separator: "\n")
        #expect(summary.contains("sso idp issuer=https://login.example.org/tenant client_id=carehub client_secret_file=\(secret)"))
        #expect(summary.contains("sso=idp") && !summary.contains("s3cret"))
    }

    @Test func mistakesAreReportedWithTheirLine() throws {
        let secret = try Self.secretFile()
        let base = "client_id=carehub client_secret_file=\(secret)"
        let cases: [(String, String)] = [
            ("sso idp client_id=carehub client_secret_file=\(secret)", "test.conf:4: sso 'idp' needs issuer=https://…"),
            ("sso idp issuer=http://login.example.org \(base)", "test.conf:4: expected issuer to be https:// (plain http:// only on a loopback address)"),
            ("sso idp issuer=https://login.example.org client_secret_file=\(secret)", "test.conf:4: sso 'idp' needs client_id=…"),
            ("sso idp issuer=https://login.example.org client_id=carehub", "test.conf:4: sso 'idp' needs client_secret_file=/path"),
            ("sso idp issuer=https://login.example.org client_id=carehub client_secret_file=secret", "test.conf:4: expected client_secret_file to be an absolute path"),
            ("sso idp issuer=https://login.example.org client_id=carehub client_secret_file=/nonexistent/secret", "test.conf:4: sso 'idp': client_secret_file /nonexistent/secret does not exist"),
            ("sso idp issuer=https://login.example.org \(base) claim_role=groups", "test.conf:4: sso 'idp': claim_role= and admin_group= go together"),
            ("sso idp issuer=https://login.example.org \(base) accounts=maybe", "test.conf:4: expected accounts=existing|create, found accounts=maybe"),
            ("sso idp issuer=https://login.example.org \(base) colour=blue", "test.conf:4: unknown parameter 'colour' for an sso provider"),
            ("sso idp issuer=https://login.example.org \(base) amr=pwd,otp", "test.conf:4: HIPAA organisation may not count amr=pwd as a second factor"),
        ]
        for (line, expected) in cases {
            let issues = configIssues(Self.org(line))
            #expect(issues.contains { $0.hasPrefix(expected) }, "\(line) gave \(issues)")
        }
        // A non-HIPAA organisation may count what it likes.
        #expect(configIssues(Self.org("sso idp issuer=https://login.example.org \(base) amr=pwd", hipaa: false)).isEmpty)
        // The auth stage names a provider that is declared.
        let unknown = configIssues(Self.org("sso idp issuer=https://login.example.org \(base)", auth: "sso=other"))
        #expect(unknown == ["test.conf:5: sso=other names no 'sso other issuer=…' line in [org clinic]; declared: idp"])
        // A loopback issuer may be plain http (a provider on the same machine).
        #expect(configIssues(Self.org("sso idp issuer=http://127.0.0.1:5000/api/oidc \(base)")).isEmpty)
    }

    @Test func aSecretOtherUsersCanReadIsRefused() throws {
        let open = try Self.secretFile(mode: 0o644)
        let issues = configIssues(Self.org("sso idp issuer=https://login.example.org client_id=carehub client_secret_file=\(open)"))
        #expect(issues == ["test.conf:4: sso 'idp': client_secret_file \(open) is readable by every user; chmod o-r it"])
    }
}
