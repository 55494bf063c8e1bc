import ArgumentParser
import CareHubCore
import CareHubTerminal
import CareHubTransport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct ConsoleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "A terminal staff console: log in (password and authenticator code are prompted), list rooms, read and answer.",
        discussion: """
            Commands: /rooms, /open ROOM, /close, /end (end the open conversation), /claim [ROOM] \
            (take a waiting chat), /transfer USER [NOTE] and /queue [NOTE] (pass the open chat to a \
            colleague or back to the queue), /team, /away, /available, /replies, /reply NAME (send \
            the organisation's canned reply NAME to the open room), /save N PATH (save attachment N \
            to a new file PATH, readable only by you), /help, /quit. \
            Any other line is sent to the open room. New conversations, messages (with their time), \
            colleagues' availability, hand-overs and the end of a chat are printed as they arrive; a \
            message in a room that is not open is one line without its text ("* ROOM waiting 3 min \
            (2 unanswered)"). Messages shown in the open room are reported read, so the patient sees \
            a read mark. A message with a file shows "attachment: NAME (SIZE)" and the number to \
            /save it by ("being checked" until the hub's virus check passes it). Others' text is \
            printed with control characters shown (ESC as ^[) and a \
            message's own lines indented under "    | ". A failed login asks again, three times \
            at most. With --sso (an organisation whose auth stage names sso=), the console prints \
            the identity provider's address and a code to enter there in any browser, and logs in \
            once you have signed in (asking for your authenticator code where the provider did not \
            confirm a second factor). The console speaks plain ws:// (reach a TLS-only hub through \
            its loopback listener or an SSH tunnel).
            """)

    @Option(help: "The hub's WebSocket listener, HOST:PORT.")
    var connect = "127.0.0.1:8080"
    @Option(help: "The organisation.")
    var org: String
    @Option(help: "Your user name (not with --sso).")
    var user: String?
    @Flag(help: "Sign in with the organisation's identity provider in a browser instead of a password.")
    var sso = false

    func validate() throws {
        if sso && user != nil { throw ValidationError("--sso signs you in through the identity provider; leave out --user") }
        if !sso && user == nil { throw ValidationError("give --user NAME, or --sso to sign in with the organisation's identity provider") }
    }

    func run() throws {
        guard let colon = connect.lastIndex(of: ":"), let port = Int(connect[connect.index(after: colon)...]) else {
            throw ValidationError("--connect: expected HOST:PORT, found '\(connect)'")
        }
        let host = String(connect[..<colon])
        let session: ConsoleSession
        do {
            session = try ConsoleSession(client: WebSocketClient(host: host, port: port), host: host, port: port, org: org)
        } catch {
            Output.error("carehub: cannot reach the hub at \(connect): \(error)")
            throw ExitCode(1)
        }
        let name = sso ? try signIn(session) : try logIn(session, user: user ?? "")
        Output.line("Logged in to \(TerminalText.field(org)) as \(TerminalText.field(name)). /help lists the commands.")
        try session.loop()
    }

    /// Attempts allowed before the console gives up.
    static let loginAttempts = 3

    /// Prompts for the password and code until the hub opens a session: a wrong password or a
    /// code already used asks again, up to ``loginAttempts`` times; end of input gives up.
    private func logIn(_ session: ConsoleSession, user: String) throws -> String {
        for attempt in 1...Self.loginAttempts {
            guard let password = Terminal.prompt("Password: ", secret: true) else { throw ExitCode(1) }
            var code = Terminal.prompt("Authenticator code (Enter if you have none yet): ", secret: false) ?? ""
            var reply = try session.request(login(user: user, password: password, code: code), expecting: ["session", "enroll"])
            if reply["type"] as? String == "enroll" {
                Output.line("Your organisation requires a second factor. Add this secret to your authenticator app:")
                Output.line("  \(TerminalText.field(reply["secret"] as? String ?? ""))")
                Output.line("  (or open \(TerminalText.field(reply["otpauthURI"] as? String ?? "")))")
                code = Terminal.prompt("Code from the app: ", secret: false) ?? ""
                reply = try session.request(login(user: user, password: password, code: code), expecting: ["session"])
                Self.printRecoveryCodes(reply)
            }
            if reply["type"] as? String == "session" {
                session.token = reply["token"] as? String
                return user
            }
            Output.error("carehub: login failed: \(TerminalText.field(reply["message"] as? String ?? "refused"))")
            guard attempt < Self.loginAttempts else { break }
            Output.error("Try again (\(Self.loginAttempts - attempt) left).")
        }
        throw ExitCode(1)
    }

    private func login(user: String, password: String, code: String) -> [String: Any] {
        var frame: [String: Any] = ["type": "login", "org": org, "user": user, "password": password, "id": "login"]
        if !code.isEmpty { frame["totp"] = code }
        return frame
    }

    private static func printRecoveryCodes(_ reply: [String: Any]) {
        guard let codes = reply["recoveryCodes"] as? [String] else { return }
        Output.line("Recovery codes (each logs you in once without the app; keep them safe):")
        for recovery in codes { Output.line("  \(TerminalText.field(recovery))") }
    }

    /// Single sign-on for a terminal: the hub starts a device sign-in at the provider, the
    /// console prints where to go and the code, then asks the hub with the ticket every
    /// `interval` seconds until the person has signed in; returns the account's name.
    private func signIn(_ session: ConsoleSession) throws -> String {
        let started = try session.request(["type": "sso_device", "org": org, "id": "device"], expecting: ["sso_device"])
        guard started["type"] as? String == "sso_device", let ticket = started["ticket"] as? String else {
            Output.error("carehub: single sign-on refused: \(TerminalText.field(started["message"] as? String ?? "refused"))")
            throw ExitCode(1)
        }
        let interval = max(1, (started["interval"] as? NSNumber)?.intValue ?? 5)
        Output.line("To sign in, open \(TerminalText.field(started["verificationURI"] as? String ?? "")) in a browser")
        Output.line("and enter the code \(TerminalText.field(started["userCode"] as? String ?? "")).")
        if let complete = started["verificationURIComplete"] as? String {
            Output.line("(Or open \(TerminalText.field(complete)), which has the code in it.)")
        }
        Output.line("Waiting for you to finish…")
        var code = ""
        var codeAttempts = 0
        while true {
            var frame: [String: Any] = ["type": "sso", "org": org, "ticket": ticket, "id": "login"]
            if !code.isEmpty { frame["totp"] = code }
            let reply = try session.request(frame, expecting: ["session", "enroll"])
            switch (reply["type"] as? String, reply["code"] as? String) {
            case ("session", _):
                Self.printRecoveryCodes(reply)
                session.token = reply["token"] as? String
                return reply["user"] as? String ?? ""
            case ("error", "sign_in_pending"):
                Thread.sleep(forTimeInterval: TimeInterval(interval))
            case ("error", "code_required"):
                Output.line("Your identity provider did not confirm a second factor.")
                code = Terminal.prompt("Authenticator code: ", secret: false) ?? ""
            case ("enroll", _):
                Output.line("Your organisation requires a second factor. Add this secret to your authenticator app:")
                Output.line("  \(TerminalText.field(reply["secret"] as? String ?? ""))")
                Output.line("  (or open \(TerminalText.field(reply["otpauthURI"] as? String ?? "")))")
                code = Terminal.prompt("Code from the app: ", secret: false) ?? ""
            case ("error", "auth_failed") where !code.isEmpty && codeAttempts + 1 < Self.loginAttempts:
                codeAttempts += 1
                Output.error("carehub: that code was not accepted. Try again (\(Self.loginAttempts - codeAttempts) left).")
                code = Terminal.prompt("Authenticator code: ", secret: false) ?? ""
            default:
                Output.error("carehub: sign-in failed: \(TerminalText.field(reply["message"] as? String ?? "refused"))")
                throw ExitCode(1)
            }
            if code.isEmpty, reply["type"] as? String != "error" || reply["code"] as? String != "sign_in_pending" { throw ExitCode(1) }
        }
    }
}

/// The console's connection: requests with replies, then an interactive loop over the terminal and the socket.
final class ConsoleSession {
    private let client: WebSocketClient
    private var room: String?
    private var nextID = 1
    /// The highest `seq` reported read in the open room.
    private var readThrough: Double = 0
    /// The organisation's canned replies by name, once listed.
    private var replies: [String: String]?
    /// A `/reply NAME` waiting for the list of replies.
    private var pendingReply: String?
    /// Where `/save` fetches attachments: the WebSocket's host and port, and the organisation.
    private let host: String
    private let port: Int
    private let org: String
    /// The session's bearer token for HTTP (the `session` frame's `token`).
    var token: String?
    /// Attachments shown, numbered from 1 in the order they were first shown, for `/save N`.
    private var attachments: [ShownAttachment] = []
    private var attachmentNumbers: [String: Int] = [:]

    struct ShownAttachment {
        let id: String
        let name: String
        let size: Int
        var state: String
    }

    init(client: WebSocketClient, host: String, port: Int, org: String) {
        self.client = client
        self.host = host
        self.port = port
        self.org = org
    }

    func send(_ frame: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: frame)
        try client.send(String(decoding: data, as: UTF8.self))
    }

    /// Sends `frame` and waits for the reply of one of `types` or an error with the same id;
    /// frames in between are printed.
    func request(_ frame: [String: Any], expecting types: Set<String>) throws -> [String: Any] {
        try send(frame)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            while let text = client.nextText() {
                guard let reply = Self.decode(text) else { continue }
                let type = reply["type"] as? String ?? ""
                if types.contains(type) || (type == "error" && reply["id"] as? String == frame["id"] as? String) { return reply }
                show(reply)
            }
            guard client.closeCode == nil else { throw ExitCode(1) }
            var descriptor = pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 200)
            guard try client.fill() else { throw ExitCode(1) }
            try client.keepAlive()
        }
        Output.error("carehub: no answer from the hub")
        throw ExitCode(1)
    }

    func loop() throws {
        var descriptors = [pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0), pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)]
        var pendingInput: [UInt8] = []
        // Wake at least every keep-alive interval to ping a quiet connection.
        let wake = Int32(client.keepAliveInterval.components.seconds * 1000)
        while true {
            _ = poll(&descriptors, 2, wake)
            try client.keepAlive()
            if descriptors[1].revents != 0 {
                guard try client.fill() else {
                    Output.line("The hub closed the connection.")
                    return
                }
                while let text = client.nextText() {
                    if let frame = Self.decode(text) {
                        show(frame)
                        if frame["type"] as? String == "session_expired" { throw ExitCode(2) }
                    }
                }
                if client.closeCode != nil {
                    Output.line("The hub closed the connection.")
                    return
                }
            }
            if descriptors[0].revents != 0 {
                var chunk = [UInt8](repeating: 0, count: 4096)
                let count = read(STDIN_FILENO, &chunk, chunk.count)
                if count <= 0 {
                    try? send(["type": "logout"])
                    return
                }
                pendingInput += chunk[..<count]
                while let newline = pendingInput.firstIndex(of: 10) {
                    let line = String(decoding: pendingInput[..<newline], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                    pendingInput.removeSubrange(...newline)
                    if try !handle(line) { return }
                }
            }
        }
    }

    /// Handles one typed line; false to quit.
    private func handle(_ line: String) throws -> Bool {
        guard !line.isEmpty else { return true }
        let words = line.split(separator: " ", maxSplits: 1).map(String.init)
        switch words[0] {
        case "/quit":
            try send(["type": "logout"])
            return false
        case "/help":
            Output.line("/rooms  list rooms · /open ROOM  read and answer a room · /close · /end  end the open chat")
            Output.line("/claim [ROOM]  take a waiting chat · /transfer USER [NOTE] · /queue [NOTE]  pass the open chat on")
            Output.line("/save N PATH  save attachment N to a new file PATH (readable only by you)")
            Output.line("/team · /away · /available · /replies · /reply NAME  send a canned reply · /quit")
        case "/save":
            save(words.count == 2 ? words[1] : "")
        case "/away", "/available":
            try send(["type": "presence", "state": String(words[0].dropFirst()), "id": "presence"])
        case "/team":
            try send(["type": "team", "id": "team"])
        case "/replies":
            try send(["type": "replies", "id": "replies"])
        case "/reply":
            guard words.count == 2, let current = room else {
                Output.line(room == nil ? "no room is open; /open ROOM first" : "usage: /reply NAME (/replies lists them)")
                return true
            }
            if let replies {
                try sendReply(named: words[1], in: current, from: replies)
            } else {
                pendingReply = words[1]
                try send(["type": "replies", "id": "replies"])
            }
        case "/claim":
            guard let target = words.count == 2 ? words[1] : room else {
                Output.line("usage: /claim ROOM (or open the room first)")
                return true
            }
            try send(["type": "claim", "room": target, "id": "claim"])
        case "/transfer", "/queue":
            guard let current = room else {
                Output.line("no room is open; /open ROOM first")
                return true
            }
            var frame: [String: Any] = ["type": "transfer", "room": current, "id": "transfer"]
            var note = words.count == 2 ? words[1] : ""
            if words[0] == "/transfer" {
                let parts = note.split(separator: " ", maxSplits: 1).map(String.init)
                guard let colleague = parts.first else {
                    Output.line("usage: /transfer USER [NOTE] (/team lists colleagues)")
                    return true
                }
                frame["to"] = colleague
                note = parts.count == 2 ? parts[1] : ""
            } else {
                frame["to"] = NSNull()
            }
            if !note.isEmpty { frame["note"] = note }
            try send(frame)
        case "/rooms":
            try send(["type": "rooms", "id": "rooms", "visitors": true])
        case "/open":
            guard words.count == 2 else {
                Output.line("usage: /open ROOM")
                return true
            }
            if let current = room { try send(["type": "unsubscribe", "room": current]) }
            room = words[1]
            readThrough = 0
            try send(["type": "subscribe", "room": words[1], "id": "open"])
        case "/close":
            guard let current = room else { return true }
            try send(["type": "unsubscribe", "room": current])
            room = nil
        case "/end":
            guard let current = room else {
                Output.line("no room is open; /open ROOM first")
                return true
            }
            try send(["type": "end", "room": current, "id": "end"])
        default:
            guard !line.hasPrefix("/") else {
                Output.line("unknown command \(TerminalText.field(words[0])); /help lists them")
                return true
            }
            guard let current = room else {
                Output.line("no room is open; /rooms lists them, /open ROOM opens one")
                return true
            }
            nextID += 1
            try send(["type": "send", "room": current, "text": line, "id": "m\(nextID)"])
        }
        return true
    }

    /// Sends the canned reply `name` as the staff member's own message.
    private func sendReply(named name: String, in current: String, from replies: [String: String]) throws {
        guard let text = replies[name] else {
            Output.line("no canned reply named \(TerminalText.field(name)); /replies lists them")
            return
        }
        nextID += 1
        try send(["type": "send", "room": current, "text": text, "id": "m\(nextID)"])
    }

    /// Reports the open room read up to `seq`: the patient sees a read mark.
    private func markRead(_ seq: Double?) {
        guard let seq, let current = room, seq > readThrough else { return }
        readThrough = seq
        try? send(["type": "read", "room": current, "seq": Int(seq)])
    }

    /// Prints a frame from the hub. Every value in it may come from a patient or another user,
    /// so each goes through ``TerminalText`` before it reaches the terminal.
    private func show(_ frame: [String: Any]) {
        let room = TerminalText.field(frame["room"] as? String ?? "")
        switch frame["type"] as? String ?? "" {
        case "rooms":
            let rooms = frame["rooms"] as? [[String: Any]] ?? []
            if rooms.isEmpty { Output.line("no rooms") }
            for entry in rooms {
                var words = [TerminalText.field(entry["room"] as? String ?? "")]
                let visitor = [entry["name"], entry["reason"]].compactMap { $0 as? String }.map(TerminalText.field)
                if !visitor.isEmpty { words.append(visitor.joined(separator: " — ")) }
                if let started = entry["startedAt"] as? Double { words.append("started " + Self.time(started)) }
                if entry["ended"] as? Bool == true { words.append("(ended)") } else if let waiting = Self.waiting(entry) { words.append(waiting) }
                if let taken = entry["assignedTo"] as? String { words.append("taken by " + TerminalText.field(taken)) }
                if entry["offline"] as? Bool == true { words.append("left while closed") }
                Output.line("  " + words.joined(separator: " · "))
            }
        case "subscribed":
            Output.line("— \(room)\(frame["ended"] as? Bool == true ? " (ended)" : "") —")
            if let visitor = frame["visitor"] as? [String: String], !visitor.isEmpty {
                let fields = visitor.keys.sorted().map { "\(TerminalText.field($0))=\(TerminalText.field(visitor[$0]!))" }
                Output.line("  visitor: " + fields.joined(separator: ", "))
            }
            if let handoff = frame["handoff"] as? [String: Any] { Output.line("  " + Self.handoff(handoff)) }
            let history = frame["history"] as? [[String: Any]] ?? []
            for entry in history { Output.line(Self.stamp(entry) + line(entry)) }
            markRead(history.last?["seq"] as? Double)
        case "message":
            Output.line("\(Self.stamp(frame))[\(room)] " + line(frame))
            if frame["room"] as? String == self.room { markRead(frame["seq"] as? Double) }
        case "presence":
            let name = TerminalText.field(frame["name"] as? String ?? frame["user"] as? String ?? "")
            Output.line("* \(name) is \(TerminalText.field(frame["state"] as? String ?? ""))")
        case "team":
            for member in frame["members"] as? [[String: Any]] ?? [] {
                let user = TerminalText.field(member["user"] as? String ?? "")
                let name = TerminalText.field(member["name"] as? String ?? "")
                Output.line("  \(user)\(name == user ? "" : " (\(name))") · \(TerminalText.field(member["state"] as? String ?? ""))")
            }
        case "replies":
            let list = frame["replies"] as? [[String: Any]] ?? []
            replies = Dictionary(list.compactMap { entry in
                (entry["name"] as? String).map { ($0, entry["text"] as? String ?? "") }
            }, uniquingKeysWith: { first, _ in first })
            if let name = pendingReply, let current = self.room {
                pendingReply = nil
                try? sendReply(named: name, in: current, from: replies ?? [:])
            } else if list.isEmpty {
                Output.line("no canned replies; an admin adds them in the admin console")
            } else {
                for entry in list {
                    Output.line("  \(TerminalText.field(entry["name"] as? String ?? "")): \(TerminalText.message(entry["text"] as? String ?? ""))")
                }
            }
        case "claimed": Output.line("* \(room) is yours")
        case "transferred" where frame["from"] != nil:
            Output.line("* \(room): " + Self.handoff(frame) + " (/open \(room))")
        case "transferred":
            let to = frame["to"] as? String
            Output.line("* \(room) \(to.map { "passed to " + TerminalText.field($0) } ?? "is back in the queue")")
        case "room_activity":
            // One line per message or end in a room that is not open, never its text; who has
            // a room, for every room.
            let isOpen = frame["room"] as? String == self.room
            switch frame["event"] as? String {
            case "message" where isOpen, "ended" where isOpen: break
            case "message" where frame["lastFrom"] as? String == "visitor": Output.line("* \(room) \(Self.waiting(frame) ?? "needs a reply")")
            case "message": Output.line("* \(room) answered by staff")
            case "ended": Output.line("* \(room) has ended")
            case "claimed": Output.line("* \(room) taken by \(TerminalText.field(frame["assignedTo"] as? String ?? ""))")
            case "transferred":
                let to = frame["assignedTo"] as? String
                Output.line("* \(room) \(to.map { "transferred to " + TerminalText.field($0) } ?? "is back in the queue")")
            default: break  // opened: room_opened said so; assigned: the assignee got `assigned`
            }
        case "attachment_ready", "attachment_refused":
            guard let id = frame["attachment"] as? String, let number = attachmentNumbers[id] else { break }
            let name = TerminalText.field(attachments[number - 1].name)
            if frame["type"] as? String == "attachment_ready" {
                attachments[number - 1].state = "ready"
                Output.line("* attachment \(number) (\(name)) in \(room) passed the virus check: /save \(number) PATH")
            } else {
                attachments[number - 1].state = "refused"
                let why = frame["code"] as? String == "infected" ? "it may contain a virus" : "it could not be kept"
                Output.line("* attachment \(number) (\(name)) in \(room) was refused: \(why)")
            }
        case "room_opened": Output.line("* new conversation \(room) (/open \(room))")
        case "assigned": Output.line("* \(room) was assigned to \(TerminalText.field(frame["user"] as? String ?? ""))")
        case "ended": Output.line("* \(room) has ended")
        case "unsubscribed" where frame["reason"] as? String == "access_changed":
            Output.line("* \(room) is no longer yours to read (reassigned or settings changed)")
        case "session_expired":
            Output.line("* your session has ended (\(TerminalText.field(frame["reason"] as? String ?? ""))); run carehub console again")
        case "error": Output.line("! \(TerminalText.field(frame["message"] as? String ?? "error"))")
        default: break  // ack, typing, unsubscribed, logged_out
        }
    }

    /// `HH:MM ` (with the date when not today) for a frame's `at`, or nothing without one.
    private static func stamp(_ entry: [String: Any]) -> String {
        guard let at = entry["at"] as? Double else { return "" }
        return time(at) + " "
    }

    /// A time in milliseconds since the epoch as `HH:MM`, or `YYYY-MM-DD HH:MM` when not today.
    static func time(_ milliseconds: Double) -> String {
        let date = Date(timeIntervalSince1970: milliseconds / 1000)
        let calendar = Calendar.current
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: date)
        let clock = String(format: "%02d:%02d", parts.hour ?? 0, parts.minute ?? 0)
        guard !calendar.isDateInToday(date) else { return clock }
        return String(format: "%04d-%02d-%02d ", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0) + clock
    }

    /// `waiting N min (K unanswered)` for a room whose visitor waits for an answer, else nil.
    static func waiting(_ entry: [String: Any]) -> String? {
        guard let since = entry["waitingSince"] as? Double else { return nil }
        let minutes = max(0, Int((Date().timeIntervalSince1970 * 1000 - since) / 60_000))
        let count = entry["unanswered"] as? Int ?? 0
        return "waiting \(minutes < 1 ? "<1" : String(minutes)) min (\(count) unanswered)"
    }

    /// `transferred by NAME at HH:MM: note`, the note's own lines indented under it.
    private static func handoff(_ entry: [String: Any]) -> String {
        let from = TerminalText.field(entry["fromName"] as? String ?? entry["from"] as? String ?? "?")
        var words = "transferred by \(from)"
        if let at = entry["at"] as? Double { words += " at " + time(at) }
        if let note = entry["note"] as? String { words += ": " + TerminalText.message(note) }
        return words
    }

    /// `from: text`, the text's own lines indented under it; for a message with a file,
    /// `from: attachment: NAME (SIZE)` and how to save it.
    private func line(_ entry: [String: Any]) -> String {
        let from = TerminalText.field(entry["from"] as? String ?? "?")
        guard let attachment = entry["attachment"] as? [String: Any], let id = attachment["id"] as? String else {
            return "\(from): \(TerminalText.message(entry["text"] as? String ?? "(unreadable)"))"
        }
        let number = number(for: id, attachment)
        let shown = attachments[number - 1]
        var words = "\(from): attachment: \(TerminalText.field(shown.name)) (\(Self.size(shown.size)))"
        words += shown.state == "ready" ? " · /save \(number) PATH" : " · being checked for viruses (number \(number))"
        if let text = entry["text"] as? String, !text.isEmpty { words += "\n" + TerminalText.continuation + TerminalText.message(text) }
        return words
    }

    /// The number `/save` knows an attachment by: the one it was first shown with.
    private func number(for id: String, _ attachment: [String: Any]) -> Int {
        let state = attachment["state"] as? String ?? "ready"
        if let known = attachmentNumbers[id] {
            if attachments[known - 1].state != "refused" { attachments[known - 1].state = state }
            return known
        }
        let size = (attachment["size"] as? NSNumber)?.intValue ?? 0
        attachments.append(ShownAttachment(id: id, name: attachment["name"] as? String ?? "(name unavailable)", size: size, state: state))
        attachmentNumbers[id] = attachments.count
        return attachments.count
    }

    /// `/save N PATH`: downloads attachment N into a new file PATH (mode 0600).
    private func save(_ arguments: String) {
        let parts = arguments.split(separator: " ", maxSplits: 1).map(String.init)
        guard parts.count == 2, let number = Int(parts[0]) else {
            Output.line("usage: /save N PATH (N is the attachment's number, as shown with it)")
            return
        }
        guard attachments.indices.contains(number - 1) else {
            Output.line(attachments.isEmpty ? "no attachment has been shown yet" : "no attachment \(number); they are numbered 1 to \(attachments.count)")
            return
        }
        let shown = attachments[number - 1]
        switch shown.state {
        case "ready": break
        case "refused":
            Output.line("attachment \(number) was refused by the virus check and is gone")
            return
        default:
            Output.line("attachment \(number) is still being checked for viruses; try again once it is ready")
            return
        }
        guard AttachmentID(checking: shown.id) != nil else {
            Output.line("cannot save attachment \(number): the hub gave it an id that is not an attachment's")
            return
        }
        guard let token else {
            Output.line("cannot save attachment \(number): this hub gave the console no token for files")
            return
        }
        let path = (parts[1] as NSString).expandingTildeInPath
        let query = org.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? org
        do {
            let bytes = try AttachmentSaver.save(host: host, port: port, path: "/attachments/\(shown.id)?org=\(query)", token: token, to: path)
            Output.line("saved attachment \(number) (\(TerminalText.field(shown.name)), \(Self.size(bytes))) to \(TerminalText.field(path))")
        } catch {
            Output.line("! could not save attachment \(number): \(TerminalText.field(String(describing: error)))")
        }
    }

    /// A size as people read it, as the hub writes sizes: `980 bytes`, `64 KB`, `1.2 MB`.
    static func size(_ bytes: Int) -> String { ByteCountText.describe(bytes) }

    private static func decode(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }
}

/// Prompts on the terminal; a secret is read with echo off when standard input is a terminal.
/// Lines are read a byte at a time, unbuffered, so the console's loop sees every later line.
enum Terminal {
    static func readRawLine() -> String? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(STDIN_FILENO, &byte, 1) == 1 {
            if byte == 10 { return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: "\r")) }
            bytes.append(byte)
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }

    static func prompt(_ text: String, secret: Bool) -> String? {
        FileHandle.standardError.write(Data(text.utf8))
        guard secret, isatty(STDIN_FILENO) == 1 else { return readRawLine() }
        var original = termios()
        tcgetattr(STDIN_FILENO, &original)
        var silent = original
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &silent)
        defer {
            tcsetattr(STDIN_FILENO, TCSANOW, &original)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        return readRawLine()
    }
}
