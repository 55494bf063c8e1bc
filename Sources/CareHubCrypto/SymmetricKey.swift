import COpenSSL

/// Secret key bytes, wiped from memory when the key is released.
public final class SymmetricKey: @unchecked Sendable {
    // Immutable after init; only read through withUnsafeBytes.
    private let storage: UnsafeMutableRawBufferPointer

    /// Copies `bytes` into key storage.
    public init(bytes: [UInt8]) {
        storage = .allocate(byteCount: max(bytes.count, 1), alignment: 16)
        storage.copyBytes(from: bytes)
        byteCount = bytes.count
    }

    /// Creates a fresh random key of `byteCount` bytes.
    public convenience init(randomByteCount byteCount: Int = 32) {
        self.init(bytes: SecureRandom.bytes(byteCount))
    }

    /// The key's length in bytes.
    public let byteCount: Int

    /// Calls `body` with the key bytes; do not let them escape.
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<byteCount]))
    }

    deinit {
        OPENSSL_cleanse(storage.baseAddress, storage.count)
        storage.deallocate()
    }
}
