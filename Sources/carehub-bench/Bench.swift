import ArgumentParser
import CareHubTransport
import CareHubCrypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `carehub-bench`: drives a running CareHub hub (or the raw relay) over real sockets and reports
/// throughput, latency, errors and the server's memory.
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carehub-bench",
        abstract: "Measure a running CareHub hub (or carehub-relay) over real WebSocket connections.",
        discussion: """
            Load scenario: --visitors connections each start a conversation (hello), --staff connections \
            log in and subscribe to those rooms (spread evenly), then the visitors send for --duration \
            seconds at --rate messages/s in total (0: as fast as --window allows), while --quiet more \
            visitor connections say hello and then stay quiet. Reports messages/s acknowledged, \
            send→ack and send→deliver latency (p50, p99, p99.9, max), errors by code, and with \
            --server-pid the server's RSS. Idle scenario (--idle N): N visitor connections that say \
            hello and then stay quiet; reports RSS per connection. Stalls scenario (--stalls SECONDS, \
            no server needed): one thread per CPU spins on the clock and reports how much of the time \
            it was kept off its core, how often for over 1 ms and the longest stall: the machine's own \
            noise, which sets a floor under the latency tail of that hour. Storage-floor scenario \
            (--storage-floor BATCH, no server needed): commits --messages HIPAA messages (the message \
            row and its chained delivery record, the hub's schema and settings) into a fresh database \
            over --visitors conversations, BATCH per transaction, and reports the CPU per message, \
            with and without the audit row: what SQLite itself costs, under the hub's storage cost. \
            Attachment scenario (--attachment BYTES): a visitor of --org uploads a file of BYTES into its \
            chat over HTTP and downloads it back, --repeats times; reports the median time and MB/s of \
            each against `cat` reading the same file, and the states the uploads were stored in.
            """)

    @Option(help: "Label for the report: hub or relay.") var target = "hub"
    @Option(help: "Server address.") var host = "127.0.0.1"
    @Option(help: "Server port (not needed with --stalls or --storage-floor).") var port: Int = 0
    @Option(help: "Organisation id.") var org = "riverside-clinic"
    @Option(help: "Visitor connections (one conversation each).") var visitors = 50
    @Option(help: "Staff connections; accounts PREFIX1…PREFIXn must exist.") var staff = 10
    @Option(help: "Staff account name prefix.") var staffPrefix = "bench.staff"
    @Option(help: "Staff accounts' password.") var staffPassword = "bench-staff-password-2026"
    @Option(help: "Total messages per second offered (0: as fast as possible).") var rate = 0
    @Option(help: "Seconds of load.") var duration = 10.0
    @Option(help: "Most unacknowledged messages per visitor.") var window = 8
    @Option(help: "The server's process id, to read its RSS.") var serverPid: Int32?
    @Option(help: "Idle scenario: open this many quiet visitor connections instead of the load.") var idle: Int?
    @Option(help: "Load scenario: also hold this many quiet visitor connections open during the load.") var quiet = 0
    @Option(help: "Stalls scenario: spin one thread per CPU for this many seconds, with no server.") var stalls: Double?
    @Option(help: ArgumentHelp("Storage-floor scenario: commit HIPAA messages straight into a fresh database, this many per transaction, with no server.", valueName: "batch")) var storageFloor: Int?
    @Option(help: "Storage-floor scenario: messages to commit (over --visitors conversations).") var messages = 60_000
    @Option(help: ArgumentHelp("Attachment scenario: upload into a visitor's chat and download again a file of this many bytes, --repeats times, against cat reading it.", valueName: "bytes")) var attachment: Int?
    @Option(help: "Attachment scenario: uploads and downloads to time.") var repeats = 5
    @Flag(help: "Print the report as JSON.") var json = false

    func validate() throws {
        if let stalls {
            guard stalls > 0 && stalls <= 600 else { throw ValidationError("--stalls takes 0 < SECONDS <= 600") }
        } else if let storageFloor {
            guard (1...10_000).contains(storageFloor) else { throw ValidationError("--storage-floor takes a batch of 1-10000 messages") }
            guard messages >= 1 && visitors >= 1 else { throw ValidationError("--storage-floor needs --messages and --visitors of at least 1") }
        } else if let attachment, !(16...50_000_000).contains(attachment) || !(1...100).contains(repeats) {
            throw ValidationError("--attachment takes 16-50000000 bytes and --repeats 1-100")
        } else if !(1...65535).contains(port) {
            throw ValidationError("--port PORT (1-65535) is required, except with --stalls or --storage-floor")
        }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        raiseOpenFileLimit()
        let report: [String: Any]
        if let stalls {
            report = StallProbe.report(seconds: stalls)
        } else if let storageFloor {
            report = try StorageFloor(batch: storageFloor, messages: messages, conversations: visitors).report()
        } else if let attachment {
            report = try AttachmentThroughput(host: host, port: port, org: org, bytes: attachment, repeats: repeats).report(target: target)
        } else if let idle {
            report = try idleScenario(count: idle)
        } else {
            report = try loadScenario()
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            printTable(report)
        }
    }

    static func json(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    // MARK: Scenarios

    /// Opens `count` visitor connections that each say hello (starting a conversation) and then
    /// stay quiet; failures are counted in `errors`.
    func openQuietVisitors(_ count: Int, errors: inout [String: Int]) -> [WebSocketClient] {
        var sockets: [WebSocketClient] = []
        sockets.reserveCapacity(count)
        for index in 0..<count {
            do {
                let socket = try WebSocketClient(host: host, port: port)
                try socket.send(#"{"type":"hello","org":"\#(org)","id":"q\#(index)"}"#)
                let reply = try socket.await(["welcome", "error"])
                if reply["type"] as? String == "error" { errors[reply["code"] as? String ?? "error", default: 0] += 1 }
                sockets.append(socket)
            } catch {
                errors["connect", default: 0] += 1
            }
        }
        return sockets
    }

    func idleScenario(count: Int) throws -> [String: Any] {
        let before = rss()
        var errors: [String: Int] = [:]
        let sockets = openQuietVisitors(count, errors: &errors)
        Thread.sleep(forTimeInterval: 1)
        let after = rss()
        var report: [String: Any] = ["target": target, "scenario": "idle", "connections": sockets.count, "errors": errors]
        if let before, let after {
            report["rss_before_kib"] = before
            report["rss_after_kib"] = after
            report["rss_per_connection_kib"] = sockets.isEmpty ? 0 : Double(after - before) / Double(sockets.count)
        }
        return report
    }

    func loadScenario() throws -> [String: Any] {
        var errors: [String: Int] = [:]
        let quietSockets = openQuietVisitors(quiet, errors: &errors)
        defer { withExtendedLifetime(quietSockets) {} }
        // Visitors: one conversation each.
        var visitorSockets: [WebSocketClient] = []
        var rooms: [String] = []
        for index in 0..<visitors {
            let socket = try WebSocketClient(host: host, port: port)
            try socket.send(#"{"type":"hello","org":"\#(org)","id":"h\#(index)"}"#)
            let welcome = try socket.await(["welcome", "error"])
            guard let room = welcome["conversation"] as? String else { throw WebSocketClient.Failure(description: "hello refused: \(welcome)") }
            visitorSockets.append(socket)
            rooms.append(room)
        }
        // Staff: log in (enrolling a second factor if the organisation asks), then subscribe.
        var staffSockets: [WebSocketClient] = []
        for index in 0..<staff {
            let socket = try WebSocketClient(host: host, port: port)
            let user = "\(staffPrefix)\(index + 1)"
            let login = #"{"type":"login","org":"\#(org)","user":"\#(user)","password":"\#(staffPassword)","id":"l"}"#
            try socket.send(login)
            var reply = try socket.await(["session", "enroll", "error"])
            if reply["type"] as? String == "enroll", let secret = (reply["secret"] as? String).flatMap(Base32.decode) {
                let totp = TOTP()
                let code = totp.code(secret: secret, counter: totp.counter(at: UInt64(Date().timeIntervalSince1970)))
                try socket.send(String(login.dropLast()) + #","totp":"\#(code)"}"#)
                reply = try socket.await(["session", "error"])
            }
            guard reply["type"] as? String == "session" else { throw WebSocketClient.Failure(description: "login of \(user) refused: \(reply)") }
            for (roomIndex, room) in rooms.enumerated() where roomIndex % max(staff, 1) == index {
                try socket.send(#"{"type":"subscribe","room":"\#(room)","id":"s\#(roomIndex)"}"#)
                _ = try socket.await(["subscribed"])
            }
            staffSockets.append(socket)
        }
        let rssLoaded = rss()

        // The options the loop reads, as plain values (a property wrapper's getter on every turn
        // is measurable at these rates).
        let (rate, window, visitors, staff) = (self.rate, self.window, self.visitors, self.staff)
        var ackLatency = Histogram()
        var deliverLatency = Histogram()
        var sent = 0
        var acked = 0
        var delivered = 0
        var outstanding = [Int](repeating: 0, count: visitors)
        var sentAt: [String: UInt64] = [:]
        var next = 0
        let all = visitorSockets + staffSockets
        // epoll, not poll: a scan of every socket on each turn would be most of the bench's own
        // CPU, taken from the server it measures on a shared machine.
        let readiness = try ReadinessSet(capacity: all.count)
        for (index, socket) in all.enumerated() { try readiness.add(socket.fd, tag: index) }
        let start = DispatchTime.now().uptimeNanoseconds
        let end = start + UInt64(duration * 1e9)
        var draining = false
        let drainEnd = end + 5_000_000_000

        // The frames of the load are read with `FrameFields`, not a JSON parser: the bench reads
        // thousands a second on the machine it measures, and every microsecond it spends is taken
        // from the server.
        func handle(_ text: String, visitor: Int?) {
            let frame = FrameFields(text)
            guard let type = frame[.type] else { return }
            let now = DispatchTime.now().uptimeNanoseconds
            switch type {
            case "ack":
                if let id = frame[.id], let at = sentAt.removeValue(forKey: id) {
                    ackLatency.record((now - at) / 1000)
                    acked += 1
                    if let visitor { outstanding[visitor] -= 1 }
                }
            case "message":
                if let text = frame[.text], text.hasPrefix("bench "), let at = UInt64(text.dropFirst(6)) {
                    deliverLatency.record((now - at) / 1000)
                    delivered += 1
                }
            case "error":
                errors[frame[.code] ?? "error", default: 0] += 1
                if let id = frame[.id], sentAt.removeValue(forKey: id) != nil, let visitor { outstanding[visitor] -= 1 }
            default:
                break
            }
        }

        while true {
            let now = DispatchTime.now().uptimeNanoseconds
            if now >= end { draining = true }
            // Each room has exactly one staff subscriber (when there is staff), so the run is
            // complete when every message is acknowledged and delivered once.
            let expectedDeliveries = staff > 0 ? acked : 0
            if draining && ((sentAt.isEmpty && delivered >= expectedDeliveries) || now >= drainEnd) { break }
            if !draining && visitors > 0 {
                let due = rate > 0 ? Int(Double(now - start) / 1e9 * Double(rate)) - sent : visitors * window
                var budget = max(0, min(due, visitors * window))
                var tried = 0
                while budget > 0 && tried < visitors {
                    let visitor = next
                    next = (next + 1) % visitors
                    tried += 1
                    guard outstanding[visitor] < window else { continue }
                    let id = "m\(sent)"
                    let stamp = DispatchTime.now().uptimeNanoseconds
                    do {
                        try visitorSockets[visitor].send(#"{"type":"send","room":"\#(rooms[visitor])","text":"bench \#(stamp)","id":"\#(id)"}"#)
                        sentAt[id] = stamp
                        outstanding[visitor] += 1
                        sent += 1
                        budget -= 1
                        tried = 0
                    } catch {
                        errors["send", default: 0] += 1
                    }
                }
            }
            readiness.wait(milliseconds: 1) { index in
                let socket = all[index]
                if (try? socket.fill()) != true {
                    errors["closed", default: 0] += 1
                    readiness.remove(socket.fd)
                }
                while let text = socket.nextText() { handle(text, visitor: index < visitors ? index : nil) }
            }
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        func summary(_ histogram: Histogram) -> [String: Any] {
            ["count": histogram.total, "p50_us": histogram.value(at: 0.5), "p99_us": histogram.value(at: 0.99),
             "p999_us": histogram.value(at: 0.999), "max_us": histogram.maximum]
        }
        var report: [String: Any] = [
            "target": target, "scenario": "load", "org": org, "visitors": visitors, "staff": staff, "quiet": quietSockets.count,
            "offered_rate": rate, "duration_s": duration, "sent": sent, "acked": acked, "delivered": delivered,
            "acked_per_s": Double(acked) / min(elapsed, duration), "unacknowledged": sentAt.count, "errors": errors,
            "ack_latency": summary(ackLatency), "deliver_latency": summary(deliverLatency),
        ]
        if let rssLoaded {
            report["rss_kib"] = rssLoaded
            report["rss_per_connection_kib"] = Double(rssLoaded) / Double(max(all.count + quietSockets.count, 1))
        }
        return report
    }

    // MARK: Helpers

    func rss() -> Int? {
        guard let serverPid, let status = try? String(contentsOfFile: "/proc/\(serverPid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        }
        return nil
    }

    func printTable(_ report: [String: Any]) {
        for key in report.keys.sorted() {
            if let nested = report[key] as? [String: Any] {
                print("\(key):")
                for inner in nested.keys.sorted() { print("  \(inner): \(nested[inner]!)") }
            } else {
                print("\(key): \(report[key]!)")
            }
        }
    }
}
