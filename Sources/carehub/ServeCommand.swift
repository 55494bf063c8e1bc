import ArgumentParser
import CareHubCore
import CareHubServer
import Dispatch
import Foundation
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the hub: WebSocket protocol on /ws, the pages of --web on /, Prometheus metrics on /metrics.",
        discussion: """
            Signals: SIGTERM or SIGINT stop gracefully (refuse new frames, finish and acknowledge the \
            ones in hand, flush replies, close connections, close the database). SIGHUP re-reads the \
            pipeline configuration and applies it without dropping connections; an invalid file is \
            reported and the configuration in force is kept.
            The master key comes from $CAREHUB_MASTER_KEY (64 hex digits) or DATA/master.key (created, mode 0600).
            """)

    @Option(name: .long, help: "The pipeline configuration file. Admins edit their organisation's section from the admin console; the hub then rewrites the file atomically and keeps the previous one in FILE.history/.")
    var config = "pipeline.conf"

    @Option(name: .long, help: "The data directory (SQLite database, master key).")
    var data = "./data"

    @Option(name: .long, help: "Address and port to listen on, and only that address: IPV4:PORT, [IPV6]:PORT or NAME:PORT (a name is resolved to its first address). 0.0.0.0 or [::] listen on every interface; port 0 picks a free port.")
    var listen = "127.0.0.1:8080"

    @Option(name: .long, help: "Directory of the browser pages served at /; only files whose real path is inside it are served.")
    var web = "web-static"

    @Option(name: .long, help: "Largest accepted WebSocket message, in bytes.")
    var maxFrameBytes = 65_536

    @Option(name: .long, help: "Most bytes that may wait to be written to one connection; a client that reads slower than the hub sends is closed past it (close code 4001).")
    var maxSendQueueBytes = 4 * 1024 * 1024

    @Option(name: .long, help: "PEM certificate; with --tls-key, serve https and wss (every response then carries HSTS, one year).")
    var tlsCert: String?

    @Option(name: .long, help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    @Option(name: .long, help: "The address staff reach the hub at (https://chat.clinic.example), for links in notifications.")
    var publicURL: String?

    @Option(name: .long, help: "Append each signed audit head ('audit head seq=N hash=… sig=…', also logged) to this file, fsync'd, mode 0600, at most once a second and at shutdown. Keep it off the data directory's storage; 'carehub audit verify --head-file FILE' checks a trail against it.")
    var auditAnchor: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(name: .long, help: "A reverse proxy (CIDR, e.g. 127.0.0.1/32 or 10.0.0.0/8; repeat or separate with commas) whose X-Forwarded-For and X-Forwarded-Proto headers are believed. Connections from other addresses are taken at their socket's address.")
    var trustedProxy: [String] = []

    @Option(name: .long, help: "Open WebSocket connections allowed from one client address.")
    var maxConnectionsPerAddress = HubLimits.standard.connectionsPerAddress

    @Option(name: .long, help: "Staff login attempts allowed per minute from one client address.")
    var maxLoginsPerAddress = HubLimits.standard.loginsPerAddressPerMinute

    @Option(name: .long, help: "Staff login attempts allowed per minute on the whole hub.")
    var maxLogins = HubLimits.standard.loginsPerMinute

    func validate() throws {
        _ = try ListenAddress(listen)
        guard (1024...16 * 1024 * 1024).contains(maxFrameBytes) else {
            throw ValidationError("--max-frame-bytes must be between 1024 and 16777216")
        }
        guard (64 * 1024...1024 * 1024 * 1024).contains(maxSendQueueBytes) else {
            throw ValidationError("--max-send-queue-bytes must be between 65536 and 1073741824")
        }
        if let publicURL, !(publicURL.hasPrefix("https://") || publicURL.hasPrefix("http://")) {
            throw ValidationError("--public-url: expected https://host[:port], found '\(publicURL)'")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
        _ = try proxies()
        for (name, value) in [("--max-connections-per-address", maxConnectionsPerAddress), ("--max-logins-per-address", maxLoginsPerAddress),
                              ("--max-logins", maxLogins)] where !(1...1_000_000).contains(value) {
            throw ValidationError("\(name) must be between 1 and 1000000, found \(value)")
        }
    }

    private func proxies() throws -> [CIDRBlock] {
        try trustedProxy.flatMap { $0.split(separator: ",") }.map { text in
            guard let block = CIDRBlock(String(text)) else {
                throw ValidationError("--trusted-proxy: expected an address or CIDR block such as 127.0.0.1/32 or 10.0.0.0/8, found '\(text)'")
            }
            return block
        }
    }

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "carehub")
        let address = try ListenAddress(listen)
        let options = HubOptions(
            configPath: config, dataDirectory: data, host: address.host, port: address.port,
            staticRoot: FileManager.default.fileExists(atPath: web) ? web : nil, maxFrameBytes: maxFrameBytes,
            tlsCertificatePath: tlsCert, tlsPrivateKeyPath: tlsKey, publicURL: publicURL, trustedProxies: try proxies(),
            limits: HubLimits(
                loginsPerAddressPerMinute: maxLoginsPerAddress, loginsPerMinute: maxLogins,
                connectionsPerAddress: maxConnectionsPerAddress),
            auditAnchorPath: auditAnchor, maxSendQueueBytes: maxSendQueueBytes)

        // Watch signals before listening, so a SIGTERM right after start-up is not lost.
        let signals = SignalStream.watch([SIGTERM, SIGINT, SIGHUP])
        let hub: Hub
        let port: Int
        do {
            hub = try Hub(options: options, logger: logger)
            port = try hub.start()
        } catch {
            Output.error("carehub: \(error)")
            throw ExitCode(1)
        }
        let scheme = tlsCert == nil ? "http" : "https"
        let host = address.host.contains(":") ? "[\(address.host)]" : address.host
        Output.line("CareHub listening on \(scheme)://\(host):\(port)/ (WebSocket \(scheme == "https" ? "wss" : "ws")://\(host):\(port)/ws)")
        for org in hub.config.orgs {
            Output.line("  org \(org.settings.id): \(org.settings.displayName), HIPAA mode \(org.settings.hipaa ? "on" : "off"), stages \(org.stages.map(\.name).joined(separator: " -> "))")
        }

        for await signal in signals {
            if signal == SIGHUP {
                switch await hub.reload() {
                case .success: Output.line("configuration reloaded from \(config)")
                case .failure(let error): Output.error("configuration refused, keeping the one in force:\n\(error)")
                }
                continue
            }
            break
        }
        await hub.shutdown()
        Output.line("CareHub stopped")
    }
}

/// `HOST:PORT` or `[IPv6]:PORT`; an IPv6 address must be in brackets.
struct ListenAddress {
    let host: String
    let port: Int

    init(_ text: String) throws {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ValidationError("--listen: expected [IPv6]:PORT, found '\(text)'")
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
            guard hostPart.contains(":") else {
                throw ValidationError("--listen: brackets hold an IPv6 address, found '\(hostPart)'")
            }
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ValidationError("--listen: expected HOST:PORT, found '\(text)'")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            guard !hostPart.contains(":") else {
                throw ValidationError("--listen: an IPv6 address goes in brackets, as [::1]:8080; found '\(text)'")
            }
        }
        guard let port = Int(portPart), (0...65_535).contains(port) else {
            throw ValidationError("--listen: expected a port from 0 to 65535, found '\(portPart)'")
        }
        guard !hostPart.isEmpty else { throw ValidationError("--listen: expected a host before the port") }
        self.host = String(hostPart)
        self.port = port
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// POSIX signals as an async sequence.
enum SignalStream {
    static func watch(_ signals: [Int32]) -> AsyncStream<Int32> {
        AsyncStream { continuation in
            let queue = DispatchQueue(label: "carehub.signals")
            var sources: [any DispatchSourceSignal] = []
            for number in signals {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler { continuation.yield(number) }
                source.resume()
                sources.append(source)
            }
            let keep = SignalSources(sources)
            continuation.onTermination = { _ in keep.cancel() }
        }
    }
}

/// Dispatch sources kept alive until the stream ends; cancelling one is safe from any thread.
private final class SignalSources: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]
    init(_ sources: [any DispatchSourceSignal]) { self.sources = sources }
    func cancel() { sources.forEach { $0.cancel() } }
}
