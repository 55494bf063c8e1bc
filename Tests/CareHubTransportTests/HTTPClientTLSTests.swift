import CareHubTesting
import CareHubTransport
import Testing

/// The HTTPS client against real TLS endpoints, each with its own certificate and so its own CA file.
@Suite("HTTP client over TLS")
struct HTTPClientTLSTests {
    let json = Array(#"{"event":"message","room":"c_1"}"#.utf8)

    func post(_ client: HTTPClient, to sink: TLSSink, path: String = "/hook") async throws -> Int {
        try await client.post(host: "127.0.0.1", port: sink.port, path: path, tls: true, body: json, contentType: "application/json")
    }

    @Test func aClientStartedDuringAnotherClientsHandshakeLeavesThatHandshakeIntact() async throws {
        let first = try TLSSink(.holdHandshake)
        let second = try TLSSink(.answer)
        let firstClient = try HTTPClient(caFile: first.certificate)
        let inFlight = Task { try await post(firstClient, to: first) }
        // The first client has sent its ClientHello; its certificate check is still to come.
        try await first.waitForClientHello()
        let secondClient = try HTTPClient(caFile: second.certificate)
        first.release()
        #expect(try await inFlight.value == 200)
        #expect(try await post(secondClient, to: second) == 200)
        #expect(try await first.request().body == json)
        #expect(try await second.request().body == json)
    }

    @Test func twoClientsWithDifferentCAFilesHandshakeAtTheSameTime() async throws {
        let sinks = try [TLSSink(.holdHandshake), TLSSink(.holdHandshake)]
        var posts: [Task<Int, any Error>] = []
        for (index, sink) in sinks.enumerated() {
            let client = try HTTPClient(caFile: sink.certificate)
            posts.append(Task { try await post(client, to: sink, path: "/\(index)") })
            try await sink.waitForClientHello()
        }
        // Both handshakes are under way together; each is then answered with its own certificate.
        for sink in sinks { sink.release() }
        for post in posts { #expect(try await post.value == 200) }
        #expect(try await sinks[0].request().path == "/0")
        #expect(try await sinks[1].request().path == "/1")
    }

    @Test func aClientTrustsOnlyItsOwnCAFile() async throws {
        let trusted = try TLSSink(.answer)
        let other = try TLSSink(.answer)
        let client = try HTTPClient(caFile: trusted.certificate, timeoutSeconds: 5)
        let otherClient = try HTTPClient(caFile: other.certificate, timeoutSeconds: 5)
        let systemStore = try HTTPClient(caFile: nil, timeoutSeconds: 5)
        await #expect(throws: HTTPClient.Failure.self) { try await post(client, to: other) }
        await #expect(throws: HTTPClient.Failure.self) { try await post(systemStore, to: other) }
        #expect(try await post(otherClient, to: other) == 200)
        #expect(try await post(client, to: trusted) == 200)
        #expect(other.requests.count == 1)
    }
}
