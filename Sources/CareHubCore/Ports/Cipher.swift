/// The port for encrypting message text under an organisation's key.
///
/// Implementations must use an authenticated cipher (AES-256-GCM) with a fresh nonce for every
/// seal, and `open` must fail if the ciphertext or the associated data differ in any bit.
public protocol Cipher: Sendable {
    /// Seals `plaintext` under `org`'s current key, binding `associatedData`.
    func seal(_ plaintext: [UInt8], org: OrgID, associatedData: [UInt8]) throws -> SealedText
    /// Opens sealed text, checking `associatedData`.
    func open(_ sealed: SealedText, org: OrgID, associatedData: [UInt8]) throws -> [UInt8]
}
