/// Where a transcript goes before the conversation is purged.
public enum ExportTarget: Sendable, Hashable, CustomStringConvertible {
    /// One JSON file per conversation in a directory, written atomically; encrypted (CMS) to the
    /// certificate when one is given.
    case directory(path: String, certificate: String?)
    /// An HTTPS POST to a BAA-covered webhook integration.
    case webhook(Integration)
    /// A plain-text copy mailed to the visitor through an e-mail integration (non-HIPAA only).
    case email(Integration, to: String)

    /// How audit rows and listings name the target: never an address someone gave.
    public var description: String {
        switch self {
        case .directory(let path, let certificate): return "directory:\(path)\(certificate == nil ? "" : " (encrypted)")"
        case .webhook(let integration): return "webhook:\(integration.name)"
        case .email(let integration, _): return "email:\(integration.name)"
        }
    }
}

/// The port through which the purge stage hands a transcript to the organisation's sink.
///
/// `export` returns only once the sink holds the transcript durably (the file is renamed into
/// place and synced; the endpoint answered 2xx; the mail command exited 0). It throws otherwise,
/// and then the purge stage keeps the conversation and tries again later.
public protocol TranscriptExporter: Sendable {
    /// Delivers `transcript` to `target` on behalf of `org`.
    func export(_ transcript: Transcript, to target: ExportTarget, org: OrgSettings) async throws
}

/// Why an export failed, in words fit for `carehub conversations --pending-purge` (no content).
public struct ExportFailure: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
