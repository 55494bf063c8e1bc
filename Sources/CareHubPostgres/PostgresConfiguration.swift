import CLibPQ

/// Where and how to connect: a libpq connection URL and the client's own settings.
///
/// The URL is libpq's (`postgresql://user:password@host:port/database?sslmode=require`); any
/// libpq parameter may be given in its query string and wins over the defaults below.
/// `synchronous_commit` is never changed by the client: PostgreSQL's default (`on`) means a
/// successful `COMMIT` has reached the server's write-ahead log on disk.
public struct PostgresConfiguration: Sendable {
    /// The libpq connection URL.
    public var url: String
    /// Connections of a ``PostgresClient``'s pool. Default 4.
    public var connections: Int
    /// Seconds libpq waits for a connection to be made before it fails (libpq's
    /// `connect_timeout`, per host address). Default 5.
    public var connectTimeout: Int
    /// Requests that may wait for a free pooled connection; more fail with
    /// ``PostgresError/poolExhausted(_:)``. Default 1024.
    public var queueLimit: Int
    /// `application_name`, shown in `pg_stat_activity`. Default `carehub`.
    public var applicationName: String

    /// A configuration for `url`; the defaults suit a hub node.
    public init(url: String, connections: Int = 4, connectTimeout: Int = 5, queueLimit: Int = 1024, applicationName: String = "carehub") {
        self.url = url
        self.connections = connections
        self.connectTimeout = connectTimeout
        self.queueLimit = queueLimit
        self.applicationName = applicationName
    }

    /// Checks that libpq can parse the URL.
    func validate() throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(url, &errorMessage) else {
            defer { if let errorMessage { PQfreemem(errorMessage) } }
            let reason = errorMessage.map { String(cString: $0) } ?? "out of memory"
            throw PostgresError.invalidURL(reason.trimmingTrailingNewlines)
        }
        PQconninfoFree(options)
    }

    /// libpq's keywords and values: the client's defaults first, then the URL (expanded by
    /// libpq, so that its own parameters override the defaults).
    var connectionParameters: [(String, String)] {
        [
            ("connect_timeout", String(max(1, connectTimeout))),
            ("fallback_application_name", applicationName),
            // A peer that vanishes without closing (a cut network) is noticed within about 30 s.
            ("keepalives", "1"),
            ("keepalives_idle", "10"),
            ("keepalives_interval", "5"),
            ("keepalives_count", "3"),
            ("tcp_user_timeout", "30000"),
            ("dbname", url),
        ]
    }
}

extension String {
    /// libpq's messages end in a newline.
    var trimmingTrailingNewlines: String {
        var text = Substring(self)
        while let last = text.last, last.isNewline { text.removeLast() }
        return String(text)
    }
}
