import COpenSSL

/// AES-256 in Galois/Counter Mode: a 12-byte random nonce and a 16-byte tag per message.
public enum AES256GCM {
    public static let keyByteCount = 32
    public static let nonceByteCount = 12
    public static let tagByteCount = 16

    /// A sealed message: nonce, ciphertext and tag.
    public struct SealedBox: Sendable, Equatable {
        public let nonce: [UInt8]
        public let ciphertext: [UInt8]
        public let tag: [UInt8]

        /// `nonce ‖ ciphertext ‖ tag`, the form that is stored.
        public var combined: [UInt8] { nonce + ciphertext + tag }

        /// Splits a combined box.
        public init(combined: [UInt8]) throws {
            guard combined.count >= AES256GCM.nonceByteCount + AES256GCM.tagByteCount else {
                throw CryptoError.truncatedSealedBox(combined.count)
            }
            nonce = Array(combined[..<AES256GCM.nonceByteCount])
            ciphertext = Array(combined[AES256GCM.nonceByteCount..<(combined.count - AES256GCM.tagByteCount)])
            tag = Array(combined[(combined.count - AES256GCM.tagByteCount)...])
        }

        init(nonce: [UInt8], ciphertext: [UInt8], tag: [UInt8]) {
            self.nonce = nonce
            self.ciphertext = ciphertext
            self.tag = tag
        }
    }

    /// Encrypts `plaintext` under `key`, binding `associatedData` into the tag.
    /// A nonce is drawn from the CSPRNG unless one is given (tests use fixed vectors).
    public static func seal(
        _ plaintext: [UInt8], using key: SymmetricKey, authenticating associatedData: [UInt8] = [],
        nonce: [UInt8]? = nil
    ) throws -> SealedBox {
        let nonce = nonce ?? SecureRandom.bytes(nonceByteCount)
        guard nonce.count == nonceByteCount else { throw CryptoError.libcrypto("nonce length") }
        let context = try Context()
        defer { context.free() }
        let ctx = context.pointer
        try check(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil), "EVP_EncryptInit_ex")
        try check(carehub_gcm_set_ivlen(ctx, Int32(nonceByteCount)), "set IV length")
        try key.withUnsafeBytes { keyBytes in
            guard keyBytes.count == keyByteCount else {
                throw CryptoError.invalidKeyLength(expected: keyByteCount, actual: keyBytes.count)
            }
            try check(EVP_EncryptInit_ex(ctx, nil, nil, keyBytes.bindMemory(to: UInt8.self).baseAddress, nonce), "EVP_EncryptInit_ex key")
        }
        var length: Int32 = 0
        if !associatedData.isEmpty {
            try check(EVP_EncryptUpdate(ctx, nil, &length, associatedData, Int32(associatedData.count)), "EVP_EncryptUpdate AAD")
        }
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + 16)
        var written = 0
        if !plaintext.isEmpty {
            try ciphertext.withUnsafeMutableBufferPointer { out in
                try check(EVP_EncryptUpdate(ctx, out.baseAddress, &length, plaintext, Int32(plaintext.count)), "EVP_EncryptUpdate")
            }
            written = Int(length)
        }
        try ciphertext.withUnsafeMutableBufferPointer { out in
            try check(EVP_EncryptFinal_ex(ctx, out.baseAddress! + written, &length), "EVP_EncryptFinal_ex")
        }
        written += Int(length)
        ciphertext.removeSubrange(written...)
        var tag = [UInt8](repeating: 0, count: tagByteCount)
        try check(carehub_gcm_get_tag(ctx, Int32(tagByteCount), &tag), "get tag")
        return SealedBox(nonce: nonce, ciphertext: ciphertext, tag: tag)
    }

    /// Decrypts and verifies `box`; throws ``CryptoError/authenticationFailed`` if anything
    /// (key, associated data, nonce, ciphertext or tag) does not match.
    public static func open(
        _ box: SealedBox, using key: SymmetricKey, authenticating associatedData: [UInt8] = []
    ) throws -> [UInt8] {
        let context = try Context()
        defer { context.free() }
        let ctx = context.pointer
        try check(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil), "EVP_DecryptInit_ex")
        try check(carehub_gcm_set_ivlen(ctx, Int32(nonceByteCount)), "set IV length")
        try key.withUnsafeBytes { keyBytes in
            guard keyBytes.count == keyByteCount else {
                throw CryptoError.invalidKeyLength(expected: keyByteCount, actual: keyBytes.count)
            }
            try check(EVP_DecryptInit_ex(ctx, nil, nil, keyBytes.bindMemory(to: UInt8.self).baseAddress, box.nonce), "EVP_DecryptInit_ex key")
        }
        var length: Int32 = 0
        if !associatedData.isEmpty {
            try check(EVP_DecryptUpdate(ctx, nil, &length, associatedData, Int32(associatedData.count)), "EVP_DecryptUpdate AAD")
        }
        var plaintext = [UInt8](repeating: 0, count: box.ciphertext.count + 16)
        var written = 0
        if !box.ciphertext.isEmpty {
            try plaintext.withUnsafeMutableBufferPointer { out in
                try check(EVP_DecryptUpdate(ctx, out.baseAddress, &length, box.ciphertext, Int32(box.ciphertext.count)), "EVP_DecryptUpdate")
            }
            written = Int(length)
        }
        var tag = box.tag
        try check(carehub_gcm_set_tag(ctx, Int32(tagByteCount), &tag), "set tag")
        let verified = plaintext.withUnsafeMutableBufferPointer { out in
            EVP_DecryptFinal_ex(ctx, out.baseAddress! + written, &length)
        }
        guard verified == 1 else {
            OPENSSL_cleanse(&plaintext, plaintext.count)
            throw CryptoError.authenticationFailed
        }
        written += Int(length)
        plaintext.removeSubrange(written...)
        return plaintext
    }

    private struct Context {
        let pointer: OpaquePointer
        init() throws {
            guard let pointer = EVP_CIPHER_CTX_new() else { throw CryptoError.libcrypto("EVP_CIPHER_CTX_new") }
            self.pointer = pointer
        }
        func free() { EVP_CIPHER_CTX_free(pointer) }
    }
}

func check(_ status: Int32, _ operation: String) throws {
    guard status == 1 else {
        ERR_clear_error()
        throw CryptoError.libcrypto(operation)
    }
}
