import CareHubCore
import CareHubTransport
import Foundation
import Synchronization

/// `carehub-relay`: the baseline for `carehub-bench`. The same transport and frame shapes as the
/// hub, but nothing else: no auth, no encryption, no storage. It answers `hello` with a room,
/// `login` with a session, `subscribe` by joining, and `send` with an `ack` plus a `message` to
/// the room's other sockets.
@main
enum Relay {
    struct State {
        var rooms: [String: [ConnectionHandle]] = [:]
        var nextRoom = 0
        var seq: UInt64 = 0
    }

    /// `PORT` (on 127.0.0.1) or `--listen HOST:PORT`, `--listen [IPV6]:PORT`: the one address to bind.
    static func listenAddress(_ arguments: [String]) -> (host: String, port: Int)? {
        if arguments.count == 1 {
            guard let port = Int(arguments[0]), (0...65_535).contains(port) else { return nil }
            return ("127.0.0.1", port)
        }
        guard arguments.count == 2, arguments[0] == "--listen" else { return nil }
        let text = arguments[1]
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
            guard host.contains(":") else { return nil }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
            guard !host.contains(":") else { return nil }
        }
        guard !host.isEmpty, let number = Int(port), (0...65_535).contains(number) else { return nil }
        return (String(host), number)
    }

    static func main() throws {
        guard let (host, port) = listenAddress(Array(CommandLine.arguments.dropFirst())) else {
            FileHandle.standardError.write(Data("usage: carehub-relay PORT | --listen HOST:PORT | --listen [IPV6]:PORT   (port 0 picks a free port)\n".utf8))
            exit(2)
        }
        let state = Mutex(State())
        let server = Mutex<WebSocketServer?>(nil)
        let transport = WebSocketServer(configuration: .init(host: host, port: port)) { handle, event in
            guard case .text(let bytes) = event,
                  let frame = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any],
                  let type = frame["type"] as? String
            else {
                if case .closed = event {
                    state.withLock { state in for key in state.rooms.keys { state.rooms[key]?.removeAll { $0 == handle } } }
                }
                return
            }
            let id = (frame["id"] as? String).map { #","id":"\#($0)""# } ?? ""
            let send: (String, ConnectionHandle) -> Void = { text, to in server.withLock { $0 }?.send(text, to: to) }
            switch type {
            case "hello":
                let room = state.withLock { state -> String in
                    state.nextRoom += 1
                    let room = "r\(state.nextRoom)"
                    state.rooms[room] = [handle]
                    return room
                }
                send(#"{"type":"welcome"\#(id),"conversation":"\#(room)","token":"relay","history":[]}"#, handle)
            case "login":
                send(#"{"type":"session"\#(id),"user":"\#(frame["user"] as? String ?? "")","role":"staff","idleTimeoutSeconds":null}"#, handle)
            case "subscribe":
                let room = frame["room"] as? String ?? ""
                state.withLock { $0.rooms[room, default: []].append(handle) }
                send(#"{"type":"subscribed"\#(id),"room":"\#(room)","ended":false,"history":[]}"#, handle)
            case "send":
                let room = frame["room"] as? String ?? ""
                let text = frame["text"] as? String ?? ""
                let (seq, members) = state.withLock { state -> (UInt64, [ConnectionHandle]) in
                    state.seq += 1
                    return (state.seq, state.rooms[room] ?? [])
                }
                let at = Int64(Date().timeIntervalSince1970 * 1000)
                send(#"{"type":"ack"\#(id),"room":"\#(room)","seq":\#(seq),"at":\#(at)}"#, handle)
                var writer = JSONWriter()
                writer.field("type", "message")
                writer.field("room", room)
                writer.field("seq", seq)
                writer.field("from", "visitor")
                writer.field("text", text)
                writer.field("at", at)
                let message = writer.finish()
                for member in members where member != handle { send(message, member) }
            default:
                send(#"{"type":"error"\#(id),"code":"unknown_type","message":"the relay knows hello, login, subscribe, send"}"#, handle)
            }
        }
        server.withLock { $0 = transport }
        let bound = try transport.start()
        print("carehub-relay listening on ws://\(transport.listeningAddress.map { "\($0)" } ?? "\(host):\(bound)")/ws")
        fflush(nil)
        let stop = DispatchSemaphore(value: 0)
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let sources = [SIGTERM, SIGINT].map { number -> any DispatchSourceSignal in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            return source
        }
        stop.wait()
        transport.shutdown(drainTimeout: .seconds(1))
        withExtendedLifetime(sources) {}
    }
}
