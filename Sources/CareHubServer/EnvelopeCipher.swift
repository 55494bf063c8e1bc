import CareHubCore
import CareHubCrypto
import CareHubStorage
import Synchronization

/// The real ``Cipher``: envelope encryption in three layers.
///
/// - the **master key** (outside the database, see ``MasterKey``) wraps
/// - each organisation's **key-encryption key** (random, versioned, rotated by `carehub keys rotate`), which wraps
/// - each scope's **data key** (random; one per conversation, one per account's secrets), which seals the text.
///
/// Every wrap and seal is AES-256-GCM with a fresh 96-bit nonce; the associated data names what is
/// wrapped (organisation, version, scope), so a wrapped key moved to another row does not open.
/// Shredding a scope deletes its data key. Unwrapped keys live only in memory.
public final class EnvelopeCipher: Cipher {
    /// The format of texts sealed under a data key.
    public static let keyID = "d1"

    private let master: SymmetricKey
    private let store: any KeyStore
    private let dataKeys = Mutex<[String: SymmetricKey]>([:])
    private let keks = Mutex<[String: SymmetricKey]>([:])

    public init(master: SymmetricKey, store: any KeyStore) {
        self.master = master
        self.store = store
    }

    public func seal(_ plaintext: [UInt8], scope: KeyScope, associatedData: [UInt8]) async throws -> SealedText {
        let key = try await dataKey(for: scope, create: true)!
        return SealedText(keyID: Self.keyID, bytes: try AES256GCM.seal(plaintext, using: key, authenticating: associatedData).combined)
    }

    public func open(_ sealed: SealedText, scope: KeyScope, associatedData: [UInt8]) async throws -> [UInt8] {
        guard sealed.keyID == Self.keyID else { throw HubError.unknownKey(sealed.keyID) }
        guard let key = try await dataKey(for: scope, create: false) else { throw HubError.keyShredded(scope.description) }
        return try AES256GCM.open(AES256GCM.SealedBox(combined: sealed.bytes), using: key, authenticating: associatedData)
    }

    public func prepare(_ scope: KeyScope) async throws {
        _ = try await dataKey(for: scope, create: true)
    }

    public func shred(_ scope: KeyScope) async throws {
        _ = dataKeys.withLock { $0.removeValue(forKey: scope.description) }
        try await store.deleteDataKey(scope: scope.description)
    }

    // MARK: Keys

    private func dataKey(for scope: KeyScope, create: Bool) async throws -> SymmetricKey? {
        let name = scope.description
        if let key = dataKeys.withLock({ $0[name] }) { return key }
        let record: DataKeyRecord
        if let stored = try await store.dataKey(scope: name) {
            record = stored
        } else if create {
            let kek = try await store.activeKEK(org: scope.org) { version in try self.wrapNewKEK(org: scope.org, version: version) }
            let fresh = SecureRandom.bytes(32)
            let wrapped = try AES256GCM.seal(
                fresh, using: try await kekKey(org: scope.org, version: kek.version),
                authenticating: Self.dataKeyAD(scope: name, org: scope.org, version: kek.version)).combined
            record = try await store.insertDataKey(.init(scope: name, org: scope.org, kekVersion: kek.version, wrapped: wrapped))
        } else {
            return nil
        }
        let key = SymmetricKey(bytes: try await unwrapDataKey(record))
        dataKeys.withLock { $0[name] = key }
        return key
    }

    private func unwrapDataKey(_ record: DataKeyRecord) async throws -> [UInt8] {
        try AES256GCM.open(
            AES256GCM.SealedBox(combined: record.wrapped), using: try await kekKey(org: record.org, version: record.kekVersion),
            authenticating: Self.dataKeyAD(scope: record.scope, org: record.org, version: record.kekVersion))
    }

    private func kekKey(org: OrgID, version: Int) async throws -> SymmetricKey {
        let name = "\(org.rawValue)/\(version)"
        if let key = keks.withLock({ $0[name] }) { return key }
        guard let record = try await store.kek(org: org, version: version), let wrapped = record.wrapped else {
            throw HubError.unknownKey("key-encryption key \(version) of \(org) (retired)")
        }
        let key = SymmetricKey(bytes: try AES256GCM.open(
            AES256GCM.SealedBox(combined: wrapped), using: master, authenticating: Self.kekAD(org: org, version: version)))
        keks.withLock { $0[name] = key }
        return key
    }

    private func wrapNewKEK(org: OrgID, version: Int) throws -> [UInt8] {
        try AES256GCM.seal(SecureRandom.bytes(32), using: master, authenticating: Self.kekAD(org: org, version: version)).combined
    }

    static func kekAD(org: OrgID, version: Int) -> [UInt8] { Array("carehub.kek.v1|\(org.rawValue)|\(version)".utf8) }

    static func dataKeyAD(scope: String, org: OrgID, version: Int) -> [UInt8] {
        Array("carehub.dek.v1|\(org.rawValue)|\(version)|\(scope)".utf8)
    }

    // MARK: Rotation

    /// What a rotation did.
    public struct RotationReport: Sendable, CustomStringConvertible {
        public let org: OrgID
        public let retiredVersions: [Int]
        public let newVersion: Int
        public let rewrapped: Int
        public var description: String {
            "\(org): key-encryption key v\(newVersion) active; \(rewrapped) data keys rewrapped; retired \(retiredVersions.map { "v\($0)" }.joined(separator: ", "))"
        }
    }

    /// Rotates an organisation's KEK: a new version, every data key rewrapped under it (messages
    /// are not re-encrypted), older versions retired and erased. Safe to interrupt and run again:
    /// it resumes the unfinished rotation. `progress` is called after each batch.
    public func rotate(org: OrgID, batchSize: Int = 500, progress: (Int) -> Void = { _ in }) async throws -> RotationReport {
        let (from, target) = try await store.beginRotation(org: org) { version in try self.wrapNewKEK(org: org, version: version) }
        let newKEK = try await kekKey(org: org, version: target.version)
        var rewrapped = 0
        while true {
            let batch = try await store.dataKeys(org: org, notUnder: target.version, limit: batchSize)
            if batch.isEmpty { break }
            for record in batch {
                let plain = try await unwrapDataKey(record)
                let wrapped = try AES256GCM.seal(
                    plain, using: newKEK, authenticating: Self.dataKeyAD(scope: record.scope, org: org, version: target.version)).combined
                try await store.rewrap(scope: record.scope, from: record, to: target.version, wrapped: wrapped)
                rewrapped += 1
            }
            progress(rewrapped)
        }
        try await store.finishRotation(org: org, version: target.version)
        keks.withLock { $0 = $0.filter { !$0.key.hasPrefix("\(org.rawValue)/") } }
        return RotationReport(org: org, retiredVersions: from, newVersion: target.version, rewrapped: rewrapped)
    }
}
