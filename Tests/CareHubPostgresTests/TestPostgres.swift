import CareHubPostgres
import CareHubPostgresTesting

/// A client on a fresh database of the shared test server; closed after `body`.
func withFreshDatabase<T>(connections: Int = 4, _ body: (PostgresClient, PostgresConfiguration) async throws -> T) async throws -> T {
    let url = try TestPostgresServer.shared().createDatabase()
    let configuration = PostgresConfiguration(url: url, connections: connections, connectTimeout: 2)
    let client = try PostgresClient(configuration: configuration)
    do {
        let value = try await body(client, configuration)
        await client.close()
        return value
    } catch {
        await client.close()
        throw error
    }
}

/// Polls `condition` every 20 ms for up to `seconds`.
func eventually(seconds: Double = 5, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// The first `count` elements of `stream` (fewer if it finishes first), or nil if they did not
/// arrive within `seconds`, so that a broken listener fails the test instead of hanging it.
func first<Element: Sendable>(_ count: Int, of stream: AsyncStream<Element>, within seconds: Double = 5) async -> [Element]? {
    await withTaskGroup(of: [Element]?.self) { group in
        group.addTask {
            var elements: [Element] = []
            for await element in stream {
                elements.append(element)
                if elements.count == count { break }
            }
            return elements
        }
        group.addTask {
            try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            return nil
        }
        let result = await group.next() ?? nil
        group.cancelAll()
        return result
    }
}
