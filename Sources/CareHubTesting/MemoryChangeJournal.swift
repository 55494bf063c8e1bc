import CareHubCore
import Foundation
import Synchronization

/// ``ChangeJournal`` in memory, for unit tests; held to the same contract tests as the SQLite one.
public final class MemoryChangeJournal: ChangeJournal {
    private struct State {
        var entries: [(at: Date, change: Change)] = []
        var lastID: Int64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    @discardableResult
    public func record(_ change: Change, at date: Date) async throws -> Change {
        state.withLock { state in
            state.lastID += 1
            let recorded = Change(id: state.lastID, org: change.org, kind: change.kind, origin: change.origin)
            state.entries.append((date, recorded))
            return recorded
        }
    }

    public func newest() async throws -> Int64 {
        state.withLock { $0.lastID }
    }

    public func changes(after id: Int64, limit: Int) async throws -> [Change] {
        state.withLock { state in Array(state.entries.map(\.change).filter { $0.id > id }.prefix(max(0, limit))) }
    }

    @discardableResult
    public func forget(before date: Date) async throws -> Int {
        state.withLock { state in
            let before = state.entries.count
            state.entries.removeAll { $0.at < date }
            return before - state.entries.count
        }
    }
}
