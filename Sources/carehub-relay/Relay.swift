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

    static func main() throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 2, let port = Int(arguments[1]) else {
            FileHandle.standardError.write(Data("usage: carehub-relay PORT   (0 picks a free port)\n".utf8))
            exit(2)
        }
        let state = Mutex(State())
        let server = Mutex<WebSocketServer?>(nil)
        let transport = WebSocketServer(configuration: .init(host: "127.0.0.1", port: port)) { handle, event in
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
        print("carehub-relay listening on ws://\(transport.listeningAddress.map { "\($0)" } ?? "127.0.0.1:\(bound)")/ws")
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
