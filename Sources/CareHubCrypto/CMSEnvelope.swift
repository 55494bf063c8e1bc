import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// Public-key encryption of exports in the standard CMS format (RFC 5083 AuthEnvelopedData with
/// AES-256-GCM), so the holder of the certificate's private key opens a file with stock tools:
///
/// ```
/// openssl cms -decrypt -inform DER -in c_1234.json.cms -inkey export-key.pem
/// ```
///
/// The hub holds only the certificate: it can write exports but never read them back.
public enum CMSEnvelope {
    /// Encrypts `plaintext` to the certificate in the PEM file at `certificatePath`, DER-encoded.
    public static func encrypt(_ plaintext: [UInt8], toCertificateAt certificatePath: String) throws -> [UInt8] {
        var output: UnsafeMutablePointer<UInt8>?
        var length = 0
        let status = plaintext.withUnsafeBufferPointer { buffer in
            carehub_cms_encrypt(certificatePath, buffer.baseAddress, buffer.count, &output, &length)
        }
        switch status {
        case 0:
            defer { free(output) }
            return Array(UnsafeBufferPointer(start: output, count: length))
        case -1: throw CryptoError.unreadableCertificate(certificatePath)
        case -2: throw CryptoError.notACertificate(certificatePath)
        default: throw CryptoError.libcrypto("CMS_encrypt")
        }
    }
}
