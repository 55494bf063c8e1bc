/// One organisation key-encryption key (KEK) version, wrapped under the master key.
public struct KEKRecord: Sendable, Hashable {
    /// Where the version is in its life.
    public enum State: String, Sendable { case active, rotating, retired }
    public let org: OrgID
    public let version: Int
    public let state: State
    /// The wrapped key; nil once the version is retired and erased.
    public let wrapped: [UInt8]?

    public init(org: OrgID, version: Int, state: State, wrapped: [UInt8]?) {
        self.org = org
        self.version = version
        self.state = state
        self.wrapped = wrapped
    }
}

/// One data key, wrapped under a KEK version.
public struct DataKeyRecord: Sendable, Hashable {
    /// The key scope it belongs to (``KeyScope/description``).
    public let scope: String
    public let org: OrgID
    public let kekVersion: Int
    public let wrapped: [UInt8]

    public init(scope: String, org: OrgID, kekVersion: Int, wrapped: [UInt8]) {
        self.scope = scope
        self.org = org
        self.kekVersion = kekVersion
        self.wrapped = wrapped
    }
}

/// The port under the envelope cipher: wrapped keys only, never a key in the clear.
///
/// Implementations must make each method one atomic step: two hub processes (or tasks) asking
/// for a scope's first data key at once end up with the same one, and a rotation's rewrap of a
/// key replaces only the wrapping it read.
public protocol KeyStore: Sendable {
    /// All KEK versions of an organisation, oldest first.
    func keks(org: OrgID) async throws -> [KEKRecord]
    /// The active KEK, creating version 1 with `makeWrapped` if the organisation has none.
    func activeKEK(org: OrgID, makeWrapped: @escaping @Sendable (Int) throws -> [UInt8]) async throws -> KEKRecord
    /// A KEK version, if it still exists.
    func kek(org: OrgID, version: Int) async throws -> KEKRecord?
    /// A scope's data key, if it has one.
    func dataKey(scope: String) async throws -> DataKeyRecord?
    /// Stores a new data key unless the scope got one meanwhile; returns the one in force.
    func insertDataKey(_ record: DataKeyRecord) async throws -> DataKeyRecord
    /// Deletes a scope's data key (crypto-shredding). Returns whether there was one.
    @discardableResult
    func deleteDataKey(scope: String) async throws -> Bool
    /// Starts a rotation (a new `rotating` version wrapped by `makeWrapped`), or returns the one
    /// an interrupted run left behind, with the versions it rotates away from.
    func beginRotation(org: OrgID, makeWrapped: @escaping @Sendable (Int) throws -> [UInt8]) async throws -> (from: [Int], to: KEKRecord)
    /// Up to `limit` data keys of the organisation not yet under `version`.
    func dataKeys(org: OrgID, notUnder version: Int, limit: Int) async throws -> [DataKeyRecord]
    /// Replaces one data key's wrapping, only if it is still the one that was read.
    func rewrap(scope: String, from old: DataKeyRecord, to version: Int, wrapped: [UInt8]) async throws
    /// Makes `version` the active KEK and retires (and erases) every older one that no data key uses.
    func finishRotation(org: OrgID, version: Int) async throws
}
