/// An outside service an organisation sends to, declared in its section of pipeline.conf:
///
/// ```
/// integration pager   type=webhook url=https://hooks.example.org/carehub baa=yes
/// integration desk    type=email   to=frontdesk@clinic.example baa=yes
/// integration records type=webhook url=https://records.example.org/transcripts baa=yes ca=/etc/carehub/records-ca.pem
/// integration ehr     type=api     baa=yes
/// ```
///
/// `baa` says whether a Business Associate Agreement covers the service. A HIPAA organisation may
/// declare only BAA-covered integrations, and only `https://` webhooks (an `api` integration
/// without a BAA is allowed: its tokens may hold no high-risk scope); the dispatcher checks the
/// same again before every delivery, in case the configuration changed under a queued one.
public struct Integration: Sendable, Hashable {
    /// How the integration is reached.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// An HTTP(S) POST of a JSON body.
        case webhook
        /// A mail handed to a sendmail-compatible command.
        case email
        /// A system that calls the hub's HTTP API with integration tokens (an EHR, a scheduler,
        /// a dashboard); the hub sends it nothing.
        case api
    }

    /// The name other lines use to refer to it (`via=`, `export_to=`).
    public let name: String
    /// Webhook or e-mail.
    public let kind: Kind
    /// Whether a Business Associate Agreement covers it.
    public let baa: Bool
    /// Webhook: the URL.
    public let url: WebhookURL?
    /// Webhook, or an API client's webhook subscriptions: a PEM file of CA certificates to trust
    /// instead of the system's.
    public let caFile: String?
    /// E-mail: the recipient of notifications (a transcript goes to the address the visitor gives).
    public let to: String?
    /// E-mail: the sender address.
    public let from: String?
    /// E-mail: the command that takes a complete message on standard input.
    public let command: [String]
    /// The line it was declared on.
    public let line: Int

    /// The default sendmail-compatible command.
    public static let defaultMailCommand = ["/usr/sbin/sendmail", "-t", "-i"]

    /// Why this integration may not receive anything from `org` right now, or nil if it may.
    public func refusal(for org: OrgSettings) -> String? {
        guard org.hipaa else { return nil }
        if !baa { return "integration '\(name)' is not covered by a BAA and receives nothing from a HIPAA organisation" }
        if let url, !url.isHTTPS { return "integration '\(name)' is a plain-http webhook; a HIPAA organisation sends only over https://" }
        return nil
    }

    /// Reads `integration NAME key=value …`.
    public init(name: String, parameters: inout StageParameters, hipaa: Bool) throws {
        guard Self.isValidName(name) else {
            throw parameters.error("expected an integration name of letters, digits, '-' and '_', found '\(name)'")
        }
        self.name = name
        line = parameters.line
        guard let type = parameters.string("type") else {
            throw parameters.error("integration '\(name)' needs type=webhook, type=email or type=api")
        }
        guard let kind = Kind(rawValue: type) else {
            throw parameters.error("expected type=webhook|email|api, found type=\(type)")
        }
        self.kind = kind
        guard let baaText = parameters.string("baa") else {
            throw parameters.error("integration '\(name)' must say baa=yes or baa=no")
        }
        guard let baa = ConfigValue.flag(baaText) else { throw parameters.error("expected baa=yes or baa=no, found baa=\(baaText)") }
        self.baa = baa
        switch kind {
        case .webhook:
            guard let text = parameters.string("url") else { throw parameters.error("webhook '\(name)' needs url=https://…") }
            guard let url = WebhookURL(text) else {
                throw parameters.error("expected url to be http://host[:port]/path or https://host[:port]/path, found url=\(text)")
            }
            self.url = url
            caFile = parameters.string("ca")
            to = nil
            from = nil
            command = []
        case .api:
            url = nil
            // The CA that signs the integration's webhook receivers, if not a public one.
            caFile = parameters.string("ca")
            to = nil
            from = nil
            command = []
        case .email:
            url = nil
            caFile = nil
            to = parameters.string("to")
            from = parameters.string("from")
            if let address = to, !Self.isPlausibleAddress(address) {
                throw parameters.error("expected to to be an e-mail address, found to=\(address)")
            }
            if let address = from, !Self.isPlausibleAddress(address) {
                throw parameters.error("expected from to be an e-mail address, found from=\(address)")
            }
            if let text = parameters.string("command") {
                command = text.split(separator: " ").map(String.init)
                guard command.first?.hasPrefix("/") == true else {
                    throw parameters.error("expected command to start with an absolute path, found command=\(text)")
                }
            } else {
                command = Self.defaultMailCommand
            }
        }
        // An API client without a BAA may hold only tokens that reach no PHI.
        if hipaa && !baa && kind != .api {
            throw parameters.error("HIPAA organisation may not declare integration '\(name)' without a BAA (baa=no); it would receive nothing")
        }
        if hipaa, let url, !url.isHTTPS {
            throw parameters.error("HIPAA organisation may not send to a plain-http webhook; expected url=https://…, found url=\(url)")
        }
    }

    /// Integration names: 1–64 letters, digits, `-` and `_`.
    public static func isValidName(_ text: String) -> Bool {
        (1...64).contains(text.count) && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    /// A light check that a string looks like one mailbox (`local@domain`), with no header-breaking characters.
    public static func isPlausibleAddress(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), text.count <= 254 else { return false }
        // Printable ASCII only: no space, control character or DEL, nothing that breaks a header.
        return text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F } && !text.contains { "<>,;:\"()[]\\".contains($0) }
    }
}

/// A parsed `http://` or `https://` URL for a webhook.
public struct WebhookURL: Sendable, Hashable, CustomStringConvertible {
    /// Whether the scheme is `https`.
    public let isHTTPS: Bool
    /// The host name or address.
    public let host: String
    /// The port (443 or 80 when not given).
    public let port: Int
    /// The path and query, starting with `/`.
    public let path: String

    /// Parses `text`, or returns nil if it is not an absolute http(s) URL.
    public init?(_ text: String) {
        let rest: Substring
        if text.hasPrefix("https://") {
            isHTTPS = true
            rest = text.dropFirst(8)
        } else if text.hasPrefix("http://") {
            isHTTPS = false
            rest = text.dropFirst(7)
        } else {
            return nil
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        guard !authority.isEmpty, !authority.contains("@"), !path.contains(where: { $0.isWhitespace }) else { return nil }
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            guard let port = Int(authority[authority.index(after: colon)...]), (1...65535).contains(port) else { return nil }
            self.port = port
            host = String(authority[..<colon])
        } else {
            port = isHTTPS ? 443 : 80
            host = String(authority)
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else { return nil }
    }

    public var description: String {
        let defaultPort = isHTTPS ? 443 : 80
        return "\(isHTTPS ? "https" : "http")://\(host)\(port == defaultPort ? "" : ":\(port)")\(path)"
    }
}
