import CareHubCore
import CareHubCrypto
import Synchronization

/// The real ``Cipher``: AES-256-GCM under a per-organisation key derived from the master key
/// with HKDF-SHA256, so each organisation's data is sealed under its own key.
public final class KeyringCipher: Cipher {
    /// The key version this keyring seals under.
    public static let keyID = "v1"

    private let master: SymmetricKey
    private let keys = Mutex<[OrgID: SymmetricKey]>([:])

    /// Creates a keyring over the master key.
    public init(master: SymmetricKey) { self.master = master }

    private func key(for org: OrgID) throws -> SymmetricKey {
        if let key = keys.withLock({ $0[org] }) { return key }
        let derived = try master.withUnsafeBytes { masterBytes in
            try HKDF.sha256(
                key: Array(masterBytes), salt: Array("carehub.org-key".utf8),
                info: Array("\(Self.keyID)|\(org.rawValue)".utf8), outputByteCount: 32)
        }
        let key = SymmetricKey(bytes: derived)
        keys.withLock { $0[org] = key }
        return key
    }

    public func seal(_ plaintext: [UInt8], org: OrgID, associatedData: [UInt8]) throws -> SealedText {
        let box = try AES256GCM.seal(plaintext, using: key(for: org), authenticating: associatedData)
        return SealedText(keyID: Self.keyID, bytes: box.combined)
    }

    public func open(_ sealed: SealedText, org: OrgID, associatedData: [UInt8]) throws -> [UInt8] {
        guard sealed.keyID == Self.keyID else { throw HubError.unknownKey(sealed.keyID) }
        return try AES256GCM.open(AES256GCM.SealedBox(combined: sealed.bytes), using: key(for: org), authenticating: associatedData)
    }
}
