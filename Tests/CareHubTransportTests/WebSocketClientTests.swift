@testable import CareHubTransport
import Dispatch
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The server side of one WebSocket on a raw socket: it answers the handshake by hand and then
/// reads and writes frames byte by byte, so the tool client is tested against RFC 6455 bytes.
final class RawWebSocketPeer: @unchecked Sendable {
    struct Frame: Equatable {
        let opcode: UInt8
        let masked: Bool
        let payload: [UInt8]
    }

    private var fd: Int32 = -1
    private var buffer: [UInt8] = []

    /// Listens on 127.0.0.1, returns the port, and accepts and upgrades one connection in the
    /// background; `accepted` waits for it.
    private let listener: Int32
    private let ready = DispatchSemaphore(value: 0)
    let port: Int

    init() throws {
        let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                bind(listening, pointer, length) == 0 && listen(listening, 1) == 0 && getsockname(listening, pointer, &length) == 0
            }
        }
        guard bound else { throw RawWebSocketClient.Failure(description: "cannot listen") }
        listener = listening
        port = Int(UInt16(bigEndian: address.sin_port))
        DispatchQueue.global().async { [self] in
            fd = accept(listener, nil, nil)
            var time = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
            while buffer.firstRange(of: Array("\r\n\r\n".utf8)) == nil, (try? fill()) != nil {}
            buffer = []
            write(Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: test\r\n\r\n".utf8))
            ready.signal()
        }
    }

    deinit {
        close(listener)
        if fd >= 0 { close(fd) }
    }

    /// Waits for the upgrade to have been answered.
    func accepted() -> Bool { ready.wait(timeout: .now() + 10) == .success }

    /// Sends a frame as a server does: unmasked.
    func send(opcode: UInt8, _ payload: [UInt8], fin: Bool = true) {
        precondition(payload.count < 126)
        write([(fin ? 0x80 : 0) | opcode, UInt8(payload.count)] + payload)
    }

    /// The next frame from the client, unmasked.
    func receive() throws -> Frame {
        let header = try read(2)
        let masked = header[1] & 0x80 != 0
        var length = Int(header[1] & 0x7F)
        if length == 126 { length = try read(2).reduce(0) { $0 << 8 | Int($1) } }
        if length == 127 { length = try read(8).reduce(0) { $0 << 8 | Int($1) } }
        let key = masked ? try read(4) : [0, 0, 0, 0]
        let payload = try read(length).enumerated().map { $0.element ^ key[$0.offset & 3] }
        return Frame(opcode: header[0] & 0x0F, masked: masked, payload: payload)
    }

    private func write(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &chunk, chunk.count, 0)
        guard count > 0 else { throw RawWebSocketClient.Failure(description: "peer: connection closed or timed out") }
        buffer += chunk[..<count]
    }

    private func read(_ count: Int) throws -> [UInt8] {
        while buffer.count < count { try fill() }
        defer { buffer.removeFirst(count) }
        return Array(buffer[..<count])
    }
}

/// Reads until a text message arrives (a hang guard of 10 s, not a timing assertion).
func nextText(_ client: WebSocketClient) throws -> String? {
    for _ in 0..<2000 {
        if let text = client.nextText() { return text }
        if client.closeCode != nil { return nil }
        var descriptor = pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)
        _ = poll(&descriptor, 1, 5)
        guard try client.fill() else { return client.nextText() }
    }
    return nil
}

@Suite("tool WebSocket client", .serialized)
struct WebSocketClientTests {
    @Test func aPingIsAnsweredWithAMaskedPongOfTheSamePayload() throws {
        let peer = try RawWebSocketPeer()
        let client = try WebSocketClient(host: "127.0.0.1", port: peer.port)
        #expect(peer.accepted())
        peer.send(opcode: 0x9, Array("are you there?".utf8))
        peer.send(opcode: 0x1, Array("after".utf8))
        #expect(try nextText(client) == "after")
        #expect(try peer.receive() == .init(opcode: 0xA, masked: true, payload: Array("are you there?".utf8)))
    }

    @Test func aPingBetweenFragmentsIsAnsweredAndTheMessageJoined() throws {
        let peer = try RawWebSocketPeer()
        let client = try WebSocketClient(host: "127.0.0.1", port: peer.port)
        #expect(peer.accepted())
        peer.send(opcode: 0x1, Array("hel".utf8), fin: false)
        peer.send(opcode: 0x9, [1, 2, 3])
        peer.send(opcode: 0x0, Array("lo".utf8), fin: true)
        #expect(try nextText(client) == "hello")
        #expect(try peer.receive() == .init(opcode: 0xA, masked: true, payload: [1, 2, 3]))
    }

    @Test func theClientPingsWhenQuietAndCountsPongs() throws {
        let peer = try RawWebSocketPeer()
        let client = try WebSocketClient(host: "127.0.0.1", port: peer.port)
        #expect(peer.accepted())
        client.keepAliveInterval = .seconds(3600)
        try client.keepAlive()
        try client.keepAlive(now: .now + .seconds(3601))
        let ping = try peer.receive()
        #expect(ping.opcode == 0x9 && ping.masked)
        peer.send(opcode: 0xA, ping.payload)
        peer.send(opcode: 0x1, Array("next".utf8))
        #expect(try nextText(client) == "next")
        #expect(client.pongCount == 1)
        // Only one ping went out: the first call came before the interval had passed.
        try client.send("marker")
        #expect(try peer.receive() == .init(opcode: 0x1, masked: true, payload: Array("marker".utf8)))
    }

    @Test func aCloseIsAnsweredWithTheSameCodeAndReported() throws {
        let peer = try RawWebSocketPeer()
        let client = try WebSocketClient(host: "127.0.0.1", port: peer.port)
        #expect(peer.accepted())
        peer.send(opcode: 0x8, [0x03, 0xE9] + Array("going away".utf8))
        peer.send(opcode: 0x1, Array("too late".utf8))
        #expect(try nextText(client) == nil)
        #expect(client.closeCode == 1001)
        #expect(try peer.receive() == .init(opcode: 0x8, masked: true, payload: [0x03, 0xE9]))
    }
}
