import CareHubCore
import CareHubTesting
import CareHubCrypto
@testable import CareHubServer
import CareHubStorage
import CareHubTransport
import Foundation
import Logging
import Synchronization
import Testing

/// What the hub sent, per connection, in place of the transport.
final class CapturedOutbound: HubOutbound {
    private let sent = Mutex<[(handle: ConnectionHandle, text: String)]>([])
    private let closed = Mutex<[(handle: ConnectionHandle, code: UInt16)]>([])
    private let flow = Mutex<[(handle: ConnectionHandle, receiving: Bool)]>([])

    func send(_ text: String, to handle: ConnectionHandle) { sent.withLock { $0.append((handle, text)) } }
    func send(_ frames: [(text: String, handle: ConnectionHandle)]) { sent.withLock { $0 += frames.map { ($0.handle, $0.text) } } }
    func close(_ handle: ConnectionHandle, code: UInt16) { closed.withLock { $0.append((handle, code)) } }
    func pauseReceiving(_ handle: ConnectionHandle) { flow.withLock { $0.append((handle, false)) } }
    func resumeReceiving(_ handle: ConnectionHandle) { flow.withLock { $0.append((handle, true)) } }

    /// The pauses (false) and resumes (true) asked for `handle`, in order.
    func flowChanges(of handle: ConnectionHandle) -> [Bool] { flow.withLock { $0.filter { $0.handle == handle }.map(\.receiving) } }

    /// Every frame sent to `handle`, decoded, in order.
    func frames(to handle: ConnectionHandle) -> [[String: Any]] {
        sent.withLock { $0.filter { $0.handle == handle }.map(\.text) }.compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }

    /// The close codes sent to `handle`.
    func closes(of handle: ConnectionHandle) -> [UInt16] { closed.withLock { $0.filter { $0.handle == handle }.map(\.code) } }
}

/// A real hub (real pipelines, SQLite in a temporary directory, real scrypt) driven without
/// sockets: connections are opened, fed frames and closed as the transport would, and what the
/// hub sends each of them is read back. With `sockets`, the hub has its real transport instead
/// (`hub.start()` listens on a free loopback port) and ``out`` sees nothing.
final class HubHarness {
    static let config = """
        [org clinic]
        name = Test Clinic
        hipaa = off
        stage auth visitors=on twofactor=optional
        stage idle timeout=30m lifetime=12h
        stage store history=50
        stage fanout notify=none

        [org other]
        name = Other Clinic
        hipaa = off
        stage auth visitors=off twofactor=off
        stage store
        stage fanout notify=none
        """

    let directory: String
    let hub: Hub
    let out = CapturedOutbound()
    /// The hub's clock, moved only by ``advance(by:)``; it starts at the real time.
    let clock = ManualClock(Date())
    private var seen: [UInt64: Int] = [:]
    private var secrets: [String: [UInt8]] = [:]

    init(config: String = HubHarness.config, sockets: Bool = false, configure: (inout HubOptions) -> Void = { _ in }) throws {
        directory = NSTemporaryDirectory() + "carehub-harness-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/pipeline.conf"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        var options = HubOptions(configPath: path, dataDirectory: directory + "/data", port: 0, staticRoot: nil)
        configure(&options)
        try FileManager.default.createDirectory(atPath: options.dataDirectory, withIntermediateDirectories: true)
        hub = try Hub(options: options, logger: Logger(label: "test"), outbound: sockets ? nil : out, clock: clock)
    }

    /// Moves the hub's clock on by `seconds` and runs one round of every organisation's
    /// time-driven work, as the once-a-second rounds would at that time.
    func advance(by seconds: TimeInterval) async {
        clock.advance(by: seconds)
        await hub.tick()
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// Shuts the hub down as `carehub serve` does on SIGTERM.
    func stop() async { await hub.shutdown() }

    /// Adds a staff account with a password (scrypt, as `carehub user add` does).
    func addUser(_ name: String, org: String = "clinic", role: Role = .staff, password: String = "a long test passphrase") async throws {
        let hash = try await hub.scrypt.hash(Password(password))
        try await SQLiteUserDirectory(database: hub.database, audit: hub.audit)
            .add(StaffUser(org: OrgID(org), name: name, role: role, passwordHash: hash))
    }

    func open(_ connection: UInt64, peer: String = "127.0.0.1") {
        hub.receive(.opened(ConnectionInfo(peer: peer)), from: ConnectionHandle(rawValue: connection))
    }

    func close(_ connection: UInt64) {
        hub.receive(.closed, from: ConnectionHandle(rawValue: connection))
    }

    func send(_ connection: UInt64, _ frame: [String: Any]) throws {
        let bytes = try JSONSerialization.data(withJSONObject: frame)
        hub.receive(.text(Array(bytes)), from: ConnectionHandle(rawValue: connection))
    }

    func sendRaw(_ connection: UInt64, _ event: WebSocketEvent) {
        hub.receive(event, from: ConnectionHandle(rawValue: connection))
    }

    /// The next frame sent to `connection` not read yet whose type is `type` (or an `error`),
    /// waiting for it up to a generous deadline.
    func next(_ connection: UInt64, _ types: Set<String>) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let frames = out.frames(to: ConnectionHandle(rawValue: connection))
            let start = seen[connection] ?? 0
            for index in start..<frames.count {
                let type = frames[index]["type"] as? String ?? ""
                if types.contains(type) || type == "error" {
                    seen[connection] = index + 1
                    return frames[index]
                }
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("no \(types) frame reached connection \(connection)")
        throw HarnessError.timedOut
    }

    /// Sends `frame` and returns its answer (`types` or an error).
    func request(_ connection: UInt64, _ frame: [String: Any], _ types: Set<String>) async throws -> [String: Any] {
        try send(connection, frame)
        return try await next(connection, types)
    }

    /// Logs `user` in on `connection`, enrolling a second factor when the hub asks for one.
    func login(_ connection: UInt64, _ user: String, org: String = "clinic", password: String = "a long test passphrase") async throws -> [String: Any] {
        var frame: [String: Any] = ["type": "login", "org": org, "user": user, "password": password, "id": "login"]
        if let secret = secrets[user] { frame["totp"] = code(secret, step: 0) }
        var reply = try await request(connection, frame, ["session", "enroll"])
        if reply["type"] as? String == "enroll" {
            let secret = try #require(Base32.decode(reply["secret"] as? String ?? ""))
            secrets[user] = secret
            frame["totp"] = code(secret, step: 0)
            reply = try await request(connection, frame, ["session"])
        }
        return reply
    }

    /// The code `user`'s authenticator (enrolled by ``login(_:_:org:password:)``) shows `step`
    /// time steps after now.
    func code(for user: String, step: UInt64) throws -> String {
        code(try #require(secrets[user], "\(user) has not enrolled"), step: step)
    }

    /// Six digits that `user`'s authenticator shows for no step the hub accepts now.
    func wrongCode(for user: String) throws -> String {
        let secret = try #require(secrets[user])
        let totp = TOTP()
        let now = totp.counter(at: UInt64(Date().timeIntervalSince1970))
        let shown = Set((now - 1...now + 2).map { totp.code(secret: secret, counter: $0) })
        return try #require(["000000", "111111", "222222", "333333", "444444"].first { !shown.contains($0) })
    }

    private func code(_ secret: [UInt8], step: UInt64) -> String {
        let totp = TOTP()
        return totp.code(secret: secret, counter: totp.counter(at: UInt64(Date().timeIntervalSince1970)) + step)
    }

    enum HarnessError: Error { case timedOut }
}
