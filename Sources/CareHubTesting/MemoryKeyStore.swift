import CareHubCore
import Synchronization

/// ``KeyStore`` in memory, for unit tests; held to the same contract tests as the SQLite store.
public final class MemoryKeyStore: KeyStore {
    private struct State {
        var keks: [KEKRecord] = []
        var dataKeys: [String: DataKeyRecord] = [:]
    }

    /// Rotation could not finish: data keys are still under an older version.
    public struct RotationIncomplete: Error {}

    private let state = Mutex(State())

    public init() {}

    public func keks(org: OrgID) async throws -> [KEKRecord] {
        state.withLock { $0.keks.filter { $0.org == org }.sorted { $0.version < $1.version } }
    }

    public func activeKEK(org: OrgID, makeWrapped: @escaping @Sendable (Int) throws -> [UInt8]) async throws -> KEKRecord {
        try state.withLock { state in
            if let live = state.keks.filter({ $0.org == org && $0.state != .retired }).max(by: { $0.version < $1.version }) { return live }
            let record = KEKRecord(org: org, version: 1, state: .active, wrapped: try makeWrapped(1))
            state.keks.append(record)
            return record
        }
    }

    public func kek(org: OrgID, version: Int) async throws -> KEKRecord? {
        state.withLock { $0.keks.first { $0.org == org && $0.version == version } }
    }

    public func dataKey(scope: String) async throws -> DataKeyRecord? { state.withLock { $0.dataKeys[scope] } }

    public func insertDataKey(_ record: DataKeyRecord) async throws -> DataKeyRecord {
        state.withLock { state in
            if let existing = state.dataKeys[record.scope] { return existing }
            state.dataKeys[record.scope] = record
            return record
        }
    }

    @discardableResult
    public func deleteDataKey(scope: String) async throws -> Bool {
        state.withLock { $0.dataKeys.removeValue(forKey: scope) != nil }
    }

    public func beginRotation(org: OrgID, makeWrapped: @escaping @Sendable (Int) throws -> [UInt8]) async throws -> (from: [Int], to: KEKRecord) {
        try state.withLock { state in
            let all = state.keks.filter { $0.org == org }.sorted { $0.version < $1.version }
            let live = all.filter { $0.state != .retired }.map(\.version)
            if let rotating = all.last(where: { $0.state == .rotating }) {
                return (live.filter { $0 != rotating.version }, rotating)
            }
            let version = (all.last?.version ?? 0) + 1
            let record = KEKRecord(org: org, version: version, state: .rotating, wrapped: try makeWrapped(version))
            state.keks.append(record)
            return (live, record)
        }
    }

    public func dataKeys(org: OrgID, notUnder version: Int, limit: Int) async throws -> [DataKeyRecord] {
        state.withLock { Array($0.dataKeys.values.filter { $0.org == org && $0.kekVersion != version }.prefix(limit)) }
    }

    public func rewrap(scope: String, from old: DataKeyRecord, to version: Int, wrapped: [UInt8]) async throws {
        state.withLock { state in
            guard state.dataKeys[scope] == old else { return }
            state.dataKeys[scope] = DataKeyRecord(scope: scope, org: old.org, kekVersion: version, wrapped: wrapped)
        }
    }

    public func finishRotation(org: OrgID, version: Int) async throws {
        try state.withLock { state in
            guard !state.dataKeys.values.contains(where: { $0.org == org && $0.kekVersion != version }) else { throw RotationIncomplete() }
            state.keks = state.keks.map { record in
                guard record.org == org else { return record }
                if record.version == version { return KEKRecord(org: org, version: version, state: .active, wrapped: record.wrapped) }
                return record.state == .retired ? record : KEKRecord(org: org, version: record.version, state: .retired, wrapped: nil)
            }
        }
    }
}
