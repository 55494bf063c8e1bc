/// What an organisation accepts as attachments (`attachments max_size=10MB types=…` in
/// pipeline.conf). An organisation without the line takes none.
public struct OrgAttachments: Sendable, Hashable {
    /// The largest file, in bytes.
    public var maxBytes: Int
    /// The types accepted, as found in the file's bytes (``ContentSniffer``), in the order written.
    public var types: [String]

    /// The defaults: 10 MB, and images (JPEG, PNG, GIF, WebP) and PDF.
    public static let standard = OrgAttachments(maxBytes: 10_000_000, types: ContentSniffer.knownTypes)
    /// The largest `max_size` a line may set: 50 MB.
    public static let largestMaxBytes = 50_000_000

    /// Creates settings.
    public init(maxBytes: Int, types: [String]) {
        self.maxBytes = maxBytes
        self.types = types
    }

    /// Whether files of `type` are accepted.
    public func accepts(_ type: String) -> Bool { types.contains(type) }
}

/// Tells a file's type from its first bytes, never from its name or a header a sender set.
public enum ContentSniffer {
    /// The types it recognises, in the order of ``OrgAttachments/standard``.
    public static let knownTypes = ["image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"]
    /// How many leading bytes it needs to decide.
    public static let prefixLength = 12

    /// The type the bytes begin with, or nil if none it knows.
    public static func type(of bytes: some Collection<UInt8>) -> String? {
        let head = Array(bytes.prefix(prefixLength))
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            head.count >= offset + magic.count && Array(head[offset..<(offset + magic.count)]) == magic
        }
        if starts([0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return "image/gif" }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return "image/webp" }
        if starts(Array("%PDF-".utf8)) { return "application/pdf" }
        return nil
    }
}

/// Sizes as people read them: `980 bytes`, `64 KB`, `1.2 MB` (powers of 1,000, as `max_size` is written).
public enum ByteCountText {
    /// `bytes` in the largest unit that leaves at least 1, with one decimal below 10.
    public static func describe(_ bytes: Int) -> String {
        let units: [(Double, String)] = [(1e9, "GB"), (1e6, "MB"), (1e3, "KB")]
        for (size, name) in units where Double(bytes) >= size {
            let value = Double(bytes) / size
            let rounded = value < 10 ? (value * 10).rounded() / 10 : value.rounded()
            let text = rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
            return "\(text) \(name)"
        }
        return bytes == 1 ? "1 byte" : "\(bytes) bytes"
    }
}
