import CareHubCrypto
import Foundation

/// The secrets webhook subscriptions are signed with, and the signature itself.
///
/// A subscription's secret is never stored: it is `whsec_` and the hex of
/// HKDF-SHA256(master key, salt `carehub.webhooks`, info `secret.v1:` + subscription id), so the
/// hub derives it again for every delivery and the database holds nothing that signs.
///
/// ```swift
/// let secret = try signer.secret(for: "wh_0123456789abcdef")
/// let header = WebhookSigner.signature(secret: secret, timestamp: "1767000000", body: json)
/// // "sha256=" + hex(HMAC-SHA256(secret, "1767000000." + json))
/// ```
struct WebhookSigner: Sendable {
    private let master: SymmetricKey

    init(master: SymmetricKey) { self.master = master }

    /// The subscription's secret, as the receiver holds it.
    func secret(for id: String) throws -> String {
        let bytes = try master.withUnsafeBytes {
            try HKDF.sha256(key: Array($0), salt: Array("carehub.webhooks".utf8), info: Array("secret.v1:\(id)".utf8), outputByteCount: 32)
        }
        return "whsec_" + Hex.encode(bytes)
    }

    /// `sha256=` and the hex of HMAC-SHA256 keyed with the secret's UTF-8 bytes over
    /// `timestamp + "." + body`.
    static func signature(secret: String, timestamp: String, body: String) -> String {
        "sha256=" + Hex.encode(HMAC.sha256(key: Array(secret.utf8), message: Array("\(timestamp).\(body)".utf8)))
    }
}
