import CareHubCore
import CareHubPostgresStorage
import CareHubServer
import CareHubStorage
import CareHubTesting
import Foundation

/// The conversation stores a contract runs against, each fresh: the SQLite store, the hub's cache
/// in front of it, the PostgreSQL store (a database of its own), and the in-memory double the
/// stage tests use. `keep` holds what a store needs
/// alive (its database) for the test's length.
func conversationStoresUnderTest() async throws -> [(name: String, store: any ConversationStore, keep: Any)] {
    let sqlite = try KeyFixture()
    let cached = try KeyFixture()
    let postgres = try await PostgresStoreFixture()
    return [
        ("sqlite", SQLiteConversationStore(database: sqlite.database), sqlite),
        ("cache", ConversationCache(SQLiteConversationStore(database: cached.database), clock: ManualClock(), lifetime: 60), cached),
        ("postgres", PostgresConversationStore(database: postgres.database), postgres),
        ("memory", MemoryConversationStore(), ()),
    ]
}
