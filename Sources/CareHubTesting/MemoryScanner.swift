import CareHubCore
import Synchronization

/// A malware scanner in memory, held to ClamdScanner's contract (MalwareScannerContractTests): a
/// file holding one of its signatures' bytes is infected, however the pieces fall; a scanner that
/// is ``available`` no more fails every scan under way and every new one as unavailable.
public final class MemoryScanner: MalwareScanner {
    /// ClamAV's standard test file, which every scanner reports and nothing harms.
    public static let eicar = Array(#"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"#.utf8)

    private struct State {
        var available = true
        var finished = 0
    }

    private let signatures: [(name: String, bytes: [UInt8])]
    private let state = Mutex(State())

    /// A scanner that knows `signatures` (name: bytes); by default EICAR as `CareHub.Test.EICAR`.
    public init(signatures: [String: [UInt8]] = ["CareHub.Test.EICAR": MemoryScanner.eicar]) {
        self.signatures = signatures.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Whether the scanner answers; set to false to take it down.
    public var available: Bool {
        get { state.withLock { $0.available } }
        set { state.withLock { $0.available = newValue } }
    }

    /// How many scans ended with a verdict.
    public var finishedScans: Int { state.withLock { $0.finished } }

    public func begin() async throws -> any MalwareScan {
        try checkAvailable()
        return Scan(scanner: self)
    }

    fileprivate func checkAvailable() throws {
        guard available else { throw ScannerUnavailable("the scanner is not answering") }
    }

    fileprivate func verdict(of bytes: [UInt8]) -> ScanVerdict {
        state.withLock { $0.finished += 1 }
        for signature in signatures where !signature.bytes.isEmpty && bytes.count >= signature.bytes.count {
            let first = signature.bytes[0]
            for start in 0...(bytes.count - signature.bytes.count) where bytes[start] == first {
                if bytes[start..<(start + signature.bytes.count)].elementsEqual(signature.bytes) {
                    return .infected(signature: signature.name)
                }
            }
        }
        return .clean
    }

    /// One file: its bytes are held only while it is scanned, as a daemon holds its stream.
    private final class Scan: MalwareScan {
        private let scanner: MemoryScanner
        private let bytes = Mutex<[UInt8]?>([])

        init(scanner: MemoryScanner) { self.scanner = scanner }

        func feed(_ piece: [UInt8]) async throws {
            try scanner.checkAvailable()
            try bytes.withLock { bytes in
                guard bytes != nil else { throw ScannerUnavailable("the scan is over") }
                bytes! += piece
            }
        }

        func finish() async throws -> ScanVerdict {
            let file = bytes.withLock { bytes in
                defer { bytes = nil }
                return bytes
            }
            guard let file else { throw ScannerUnavailable("the scan is over") }
            try scanner.checkAvailable()
            return scanner.verdict(of: file)
        }

        func cancel() async { bytes.withLock { $0 = nil } }
    }
}
