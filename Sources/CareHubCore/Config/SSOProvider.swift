/// An OpenID Connect identity provider an organisation's staff log in with, declared in its
/// section of pipeline.conf and named by `stage auth sso=NAME`:
///
/// ```
/// sso clinic-idp issuer=https://login.clinic.example client_id=carehub client_secret_file=/etc/carehub/sso-secret claim_role=groups admin_group=carehub-admins accounts=create
/// ```
///
/// The client secret is read from `client_secret_file` (owned by the operator; the admin API
/// never sees it). `issuer` is `https://`, or `http://` on a loopback address only.
public struct SSOProvider: Sendable, Hashable {
    /// What happens when someone the provider vouches for has no CareHub account.
    public enum Accounts: String, Sendable, Hashable {
        /// Refused: an admin makes the account first.
        case existing
        /// Made on first login (just in time), role from `claim_role`/`admin_group`.
        case create
    }

    /// The name `stage auth sso=` uses.
    public let name: String
    /// The issuer identifier, exactly as the provider's discovery document states it.
    public let issuer: String
    /// The issuer as a URL (discovery is at `issuer + "/.well-known/openid-configuration"`).
    public let issuerURL: WebhookURL
    /// CareHub's client id at the provider.
    public let clientID: String
    /// The file holding the client secret (one line).
    public let clientSecretFile: String
    /// Scopes asked for; always includes `openid`.
    public let scopes: [String]
    /// The ID token claim that names the CareHub account (default `preferred_username`).
    public let userClaim: String
    /// The claim (a string or a list) read for `adminGroup`; nil: every new account is staff.
    public let roleClaim: String?
    /// The value of `roleClaim` that makes an account an admin.
    public let adminGroup: String?
    /// Whether unknown people get an account.
    public let accounts: Accounts
    /// `amr` values that count as a second factor (default `mfa`, `otp`, `hwk`).
    public let amr: [String]
    /// `acr` values that count as a second factor (default none).
    public let acr: [String]
    /// A PEM file of CA certificates for the provider's TLS instead of the system's.
    public let caFile: String?
    /// The line it was declared on.
    public let line: Int

    /// The default second-factor `amr` values (RFC 8176): multiple factors, a one-time password,
    /// a hardware key.
    public static let defaultAMR = ["mfa", "otp", "hwk"]
    /// `amr` values that name one factor of what someone knows or where they are: never a
    /// second factor in a HIPAA organisation.
    public static let singleFactorAMR: Set<String> = ["pwd", "password", "pin", "kba", "wia", "geo", "tel", "user", "rba"]

    /// Reads `sso NAME key=value …`.
    public init(name: String, parameters: inout StageParameters, hipaa: Bool) throws {
        guard Integration.isValidName(name) else {
            throw parameters.error("expected an sso provider name of letters, digits, '-' and '_', found '\(name)'")
        }
        self.name = name
        line = parameters.line
        guard let issuer = parameters.string("issuer") else {
            throw parameters.error("sso '\(name)' needs issuer=https://… (the provider's issuer identifier)")
        }
        guard let url = WebhookURL(issuer), !issuer.contains("?"), !issuer.contains("#") else {
            throw parameters.error("expected issuer to be an https:// URL without query or fragment, found issuer=\(issuer)")
        }
        guard url.isHTTPS || Self.isLoopbackHost(url.host) else {
            throw parameters.error("expected issuer to be https:// (plain http:// only on a loopback address), found issuer=\(issuer)")
        }
        self.issuer = issuer
        issuerURL = url
        guard let clientID = parameters.string("client_id"), !clientID.isEmpty, clientID.count <= 255,
              clientID.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { throw parameters.error("sso '\(name)' needs client_id=… (printable, at most 255 characters)") }
        self.clientID = clientID
        guard let secretFile = parameters.string("client_secret_file") else {
            throw parameters.error("sso '\(name)' needs client_secret_file=/path (a file only the hub's user reads)")
        }
        guard secretFile.hasPrefix("/") else {
            throw parameters.error("expected client_secret_file to be an absolute path, found client_secret_file=\(secretFile)")
        }
        clientSecretFile = secretFile
        var scopes = ["openid"]
        if let text = parameters.string("scopes") {
            for scope in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
                guard !scope.isEmpty, scope.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }) else {
                    throw parameters.error("expected scopes to be a comma-separated list such as openid,profile,email, found scopes=\(text)")
                }
                if !scopes.contains(scope) { scopes.append(scope) }
            }
        }
        self.scopes = scopes
        userClaim = parameters.string("claim_user") ?? "preferred_username"
        roleClaim = parameters.string("claim_role")
        adminGroup = parameters.string("admin_group")
        if (roleClaim == nil) != (adminGroup == nil) {
            throw parameters.error("sso '\(name)': claim_role= and admin_group= go together (admin only for members of the named group)")
        }
        accounts = Accounts(rawValue: try parameters.choice("accounts", ["existing", "create"], default: "existing"))!
        amr = try Self.list(&parameters, "amr", default: Self.defaultAMR)
        acr = try Self.list(&parameters, "acr", default: [])
        if hipaa, let weak = amr.first(where: { Self.singleFactorAMR.contains($0) }) {
            throw parameters.error("HIPAA organisation may not count amr=\(weak) as a second factor: staff would log in with one factor")
        }
        caFile = parameters.string("ca")
        if let caFile, !caFile.hasPrefix("/") {
            throw parameters.error("expected ca to be an absolute path, found ca=\(caFile)")
        }
    }

    /// Whether the ID token's `amr` or `acr` shows a second factor by this provider's rules.
    public func showsSecondFactor(amr tokenAMR: [String], acr tokenACR: String?) -> Bool {
        if tokenAMR.contains(where: amr.contains) { return true }
        if let tokenACR, acr.contains(tokenACR) { return true }
        return false
    }

    /// Whether `host` is a loopback name or address.
    public static func isLoopbackHost(_ host: String) -> Bool {
        host == "localhost" || host == "[::1]" || host == "::1" || host.hasPrefix("127.")
    }

    /// The summary line (`config check`, the audited diff): no secret, only its file.
    public var summary: String {
        var words = ["sso", name, "issuer=\(issuer)", "client_id=\(clientID)", "client_secret_file=\(clientSecretFile)",
                     "scopes=\(scopes.joined(separator: ","))", "claim_user=\(userClaim)"]
        if let roleClaim, let adminGroup { words += ["claim_role=\(roleClaim)", "admin_group=\(adminGroup)"] }
        words.append("accounts=\(accounts.rawValue)")
        words.append("amr=\(amr.joined(separator: ","))")
        if !acr.isEmpty { words.append("acr=\(acr.joined(separator: ","))") }
        if let caFile { words.append("ca=\(caFile)") }
        return words.joined(separator: " ")
    }

    private static func list(_ parameters: inout StageParameters, _ key: String, default defaultValue: [String]) throws -> [String] {
        guard let text = parameters.string(key) else { return defaultValue }
        let values = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard values.allSatisfy({ !$0.isEmpty && $0.count <= 255 }) else {
            throw parameters.error("expected \(key) to be a comma-separated list, found \(key)=\(text)")
        }
        return values
    }
}
