import CareHubCore
import CareHubCrypto
import CareHubTransport
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The ways out of the hub: HTTPS webhooks (libwebsockets' client), mail through a
/// sendmail-compatible command, and export directories. Shared by the transcript exporter and the
/// notification dispatcher. Errors name the destination and the failure, never content.
final class Integrations: Sendable {
    /// One HTTP client per CA file (nil: the system's trust store), created on first use.
    private let clients = Mutex<[String: HTTPClient]>([:])

    /// POSTs `json` to a webhook; succeeds only on a 2xx answer.
    func post(_ json: String, to integration: Integration) async throws {
        guard let url = integration.url else { throw ExportFailure("integration '\(integration.name)' is not a webhook") }
        let client = try client(caFile: integration.caFile)
        let status: Int
        do {
            status = try await client.post(
                host: url.host, port: url.port, path: url.path, tls: url.isHTTPS, body: Array(json.utf8),
                contentType: "application/json; charset=utf-8")
        } catch {
            throw ExportFailure("webhook '\(integration.name)': \(error)")
        }
        guard (200..<300).contains(status) else { throw ExportFailure("webhook '\(integration.name)' answered HTTP \(status)") }
    }

    /// POSTs a signed webhook event to a subscription's URL, trusting the CA file of the
    /// integration it belongs to; succeeds only on a 2xx answer.
    func post(_ json: String, to webhook: Webhook, via integration: Integration, headers: [(name: String, value: String)]) async throws {
        guard let url = WebhookURL(webhook.url), url.isHTTPS else { throw ExportFailure("webhook \(webhook.id) is not an https:// URL") }
        let client = try client(caFile: integration.caFile)
        let status: Int
        do {
            status = try await client.post(
                host: url.host, port: url.port, path: url.path, tls: true, body: Array(json.utf8),
                contentType: "application/json; charset=utf-8", headers: headers)
        } catch {
            throw ExportFailure("webhook \(webhook.id): \(error)")
        }
        guard (200..<300).contains(status) else { throw ExportFailure("webhook \(webhook.id) answered HTTP \(status)") }
    }

    /// The HTTP client that trusts `caFile` (nil: the system's store), made on first use.
    func client(caFile: String?) throws -> HTTPClient {
        try clients.withLock { clients in
            if let client = clients[caFile ?? ""] { return client }
            do {
                let client = try HTTPClient(caFile: caFile)
                clients[caFile ?? ""] = client
                return client
            } catch {
                throw ExportFailure("cannot start an HTTPS client\(caFile.map { " with CA file \($0)" } ?? ""): \(error)")
            }
        }
    }

    /// Hands a message to the integration's mail command; succeeds only if it exits 0.
    func mail(to recipient: String, subject: String, text: String, via integration: Integration) async throws {
        let from = integration.from ?? "carehub@\(ProcessInfo.processInfo.hostName)"
        // Addresses were checked to hold no whitespace or separators; the subject comes from pipeline.conf.
        let oneLineSubject = subject.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        let message = """
            To: \(recipient)\r
            From: \(from)\r
            Subject: \(oneLineSubject)\r
            MIME-Version: 1.0\r
            Content-Type: text/plain; charset=utf-8\r
            Content-Transfer-Encoding: 8bit\r
            \r
            \(text.replacingOccurrences(of: "\n", with: "\r\n"))
            """
        let command = integration.command
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            // Process waits block a thread: keep them off the cooperative pool.
            Thread.detachNewThread {
                continuation.resume(with: Result { try Self.run(command, input: Array(message.utf8), name: integration.name) })
            }
        }
    }

    private static func run(_ command: [String], input: [UInt8], name: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        let stdin = Pipe()
        process.standardInput = stdin
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw ExportFailure("e-mail '\(name)': cannot run \(command[0])")
        }
        // A command that exits without reading everything must not take the hub down with it.
        let written = Result { try stdin.fileHandleForWriting.write(contentsOf: input) }
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
        if case .failure = written { throw ExportFailure("e-mail '\(name)': \(command[0]) did not read the message") }
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw ExportFailure("e-mail '\(name)': \(command[0]) exited with status \(process.terminationStatus)")
        }
    }

    /// Stops the HTTP clients' service threads.
    func shutdown() {
        let all = clients.withLock { clients -> [HTTPClient] in
            defer { clients = [:] }
            return Array(clients.values)
        }
        for client in all { client.shutdown() }
    }
}

/// The ``TranscriptExporter`` adapter: export directories, webhooks, and the visitor's e-mail copy.
final class HubTranscriptExporter: TranscriptExporter {
    private let integrations: Integrations

    init(integrations: Integrations) { self.integrations = integrations }

    func export(_ transcript: Transcript, to target: ExportTarget, org: OrgSettings) async throws {
        // Whoever asks: the files' bytes only inside the encrypted envelope, no names outside it
        // in HIPAA mode.
        let transcript = transcript.prepared(for: target, hipaa: org.hipaa)
        switch target {
        case .directory(let path, let certificate):
            try await Self.write(transcript, into: path, certificate: certificate)
        case .webhook(let integration):
            // The configuration may have changed under a pending export.
            if let refusal = integration.refusal(for: org) { throw ExportFailure(refusal) }
            try await integrations.post(transcript.json(), to: integration)
        case .email(let integration, let to):
            guard !org.hipaa else { throw ExportFailure("a HIPAA organisation does not e-mail transcripts") }
            try await integrations.mail(
                to: to, subject: "Your conversation with \(org.displayName)",
                text: transcript.plainText(organisation: org.displayName), via: integration)
        }
    }

    /// Writes `<conversation>.json` (or `.json.cms`, encrypted to the certificate) atomically: a
    /// temporary file created 0600, written, fsync'd, renamed into place, and the directory fsync'd.
    static func write(_ transcript: Transcript, into directory: String, certificate: String?) async throws {
        var bytes = Array(transcript.json().utf8)
        var name = "\(transcript.conversation.rawValue).json"
        if let certificate {
            do {
                bytes = try CMSEnvelope.encrypt(bytes, toCertificateAt: certificate)
            } catch {
                throw ExportFailure("export_key: \(error)")
            }
            name += ".cms"
        }
        let contents = bytes
        let final = (directory as NSString).appendingPathComponent(name)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread.detachNewThread {
                continuation.resume(with: Result {
                    do {
                        try AtomicFile.write(contents, to: final, mode: 0o600)
                    } catch {
                        throw ExportFailure("export directory \(directory): \(error)")
                    }
                })
            }
        }
    }
}
