import CareHubCore

/// How `carehub serve` runs: where it listens, reads and writes.
public struct HubOptions: Sendable {
    /// Path of pipeline.conf.
    public var configPath: String
    /// The data directory (SQLite database, master key).
    public var dataDirectory: String
    /// Address to listen on (`127.0.0.1`, `::1`, `0.0.0.0`, `::`).
    public var host: String
    /// Port to listen on; 0 picks a free one.
    public var port: Int
    /// Directory of the browser pages served at `/`.
    public var staticRoot: String?
    /// Largest accepted WebSocket message, in bytes.
    public var maxFrameBytes: Int
    /// Most bytes that may wait to be written to one connection behind the frame being written;
    /// a connection that does not read fast enough is closed past it (4001).
    public var maxSendQueueBytes: Int
    /// How many received frames may wait for the hub per connection before its reading pauses.
    public var inboxLimits: InboxLimits
    /// PEM certificate and key; when both are set the hub serves https/wss.
    public var tlsCertificatePath: String?
    /// PEM private key for ``tlsCertificatePath``.
    public var tlsPrivateKeyPath: String?
    /// The address staff reach the hub at (`https://chat.clinic.example`), for links in
    /// notifications; without it links are relative (`/staff.html#room=…`).
    public var publicURL: String?
    /// Reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` the hub believes; a
    /// connection from any other address is taken at its socket's address, as plain or TLS as
    /// it is.
    public var trustedProxies: [CIDRBlock]
    /// Hub-wide limits per client address and in all.
    public var limits: HubLimits
    /// A file, ideally on other storage, to which every signed audit head is appended
    /// (`audit head seq=… hash=… sig=…`, fsync'd, mode 0600), for `carehub audit verify --head-file`.
    public var auditAnchorPath: String?

    /// Creates options with the defaults of `carehub serve`.
    public init(
        configPath: String = "pipeline.conf", dataDirectory: String = "./data", host: String = "127.0.0.1", port: Int = 8080,
        staticRoot: String? = "web-static", maxFrameBytes: Int = 65_536, tlsCertificatePath: String? = nil, tlsPrivateKeyPath: String? = nil,
        publicURL: String? = nil, trustedProxies: [CIDRBlock] = [], limits: HubLimits = .standard, auditAnchorPath: String? = nil,
        maxSendQueueBytes: Int = 4 * 1024 * 1024, inboxLimits: InboxLimits = .standard
    ) {
        self.maxSendQueueBytes = maxSendQueueBytes
        self.inboxLimits = inboxLimits
        self.configPath = configPath
        self.dataDirectory = dataDirectory
        self.host = host
        self.port = port
        self.staticRoot = staticRoot
        self.maxFrameBytes = maxFrameBytes
        self.tlsCertificatePath = tlsCertificatePath
        self.tlsPrivateKeyPath = tlsPrivateKeyPath
        self.publicURL = publicURL
        self.trustedProxies = trustedProxies
        self.limits = limits
        self.auditAnchorPath = auditAnchorPath
    }
}
