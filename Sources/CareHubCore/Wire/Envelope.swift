import Foundation

/// A decoded client frame with its optional correlation `id`.
public struct Envelope: Sendable, Hashable {
    /// The client's correlation id, echoed in the reply; at most 64 characters.
    public let id: String?
    /// The request.
    public let frame: ClientFrame

    /// Creates an envelope.
    public init(id: String?, frame: ClientFrame) {
        self.id = id
        self.frame = frame
    }

    /// A frame that could not be decoded, with the id when it could be read.
    public struct DecodingFailure: Error, Hashable, Sendable {
        /// The id of the offending frame, if readable.
        public let id: String?
        /// What was wrong.
        public let error: PipelineError
    }

    /// Longest accepted message text, in bytes of UTF-8.
    public static let maxTextBytes = 16_384

    /// Decodes one text frame.
    public static func decode(_ bytes: [UInt8]) -> Result<Envelope, DecodingFailure> {
        let reader: FieldReader
        if let flat = FlatJSON.object(bytes) {
            reader = FieldReader(strings: flat)
        } else {
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: Data(bytes), options: [])
            } catch {
                let message = String(validating: bytes, as: UTF8.self) == nil ? "frame is not valid UTF-8" : "frame is not valid JSON"
                return .failure(DecodingFailure(id: nil, error: PipelineError(.badJSON, message)))
            }
            guard let fields = object as? [String: Any] else {
                return .failure(DecodingFailure(id: nil, error: PipelineError(.badJSON, "frame must be a JSON object")))
            }
            reader = FieldReader(values: fields)
        }
        var id: String?
        if reader.has("id") {
            guard let text = try? reader.optionalString("id", maxBytes: .max, nullable: false), text.count <= 64 else {
                return .failure(DecodingFailure(id: nil, error: PipelineError(.invalidField, "field 'id' must be a string of at most 64 characters")))
            }
            // The id is echoed in replies: it names the request, so it is refused rather than cleaned.
            guard !TypedText.hasControlCharacters(text) else {
                return .failure(DecodingFailure(id: nil, error: PipelineError(.invalidField, "field 'id' must not contain control characters")))
            }
            id = text
        }
        do {
            return .success(Envelope(id: id, frame: try frame(from: reader)))
        } catch let error as PipelineError {
            return .failure(DecodingFailure(id: id, error: error))
        } catch {
            return .failure(DecodingFailure(id: id, error: .internal))
        }
    }

    private static func frame(from reader: FieldReader) throws -> ClientFrame {
        guard reader.has("type") else {
            throw PipelineError(.invalidField, "field 'type' is required")
        }
        guard let typeName = try? reader.optionalString("type", maxBytes: .max, nullable: false) else {
            throw PipelineError(.invalidField, "field 'type' must be a string")
        }
        guard let kind = ClientFrame.Kind(rawValue: typeName) else {
            let known = ClientFrame.Kind.allCases.filter { $0 != .attach && $0 != .download && $0 != .api }.map(\.rawValue).joined(separator: ", ")
            throw PipelineError(.unknownType, "unknown frame type '\(TypedText.clean(String(typeName.prefix(40)), as: .singleLine))'; known types: \(known)")
        }
        switch kind {
        case .hello:
            return .hello(
                org: try reader.org(), token: try reader.optionalString("token", maxBytes: 128), profile: try reader.profile(),
                offline: try reader.optionalBool("offline") ?? false)
        case .login:
            return .login(
                org: try reader.org(),
                user: try reader.identifier("user", maxBytes: 64),
                password: Password(try reader.string("password", maxBytes: 1024)),
                totp: try reader.optionalString("totp", maxBytes: 64).map { $0.filter { !$0.isWhitespace } })
        case .sso:
            return .sso(
                org: try reader.org(),
                ticket: try reader.identifier("ticket", maxBytes: 128),
                totp: try reader.optionalString("totp", maxBytes: 64).map { $0.filter { !$0.isWhitespace } })
        case .ssoDevice: return .ssoDevice(org: try reader.org())
        case .rooms: return .rooms(visitors: try reader.optionalBool("visitors") ?? false)
        case .subscribe: return .subscribe(room: try reader.room())
        case .unsubscribe: return .unsubscribe(room: try reader.room())
        case .send:
            let room = try reader.room()
            let text = TypedText.clean(try reader.string("text", maxBytes: maxTextBytes), as: .multiLine)
            guard !text.allSatisfy(\.isWhitespace) else {
                throw PipelineError(.invalidField, "field 'text' must not be empty")
            }
            return .send(room: room, text: text)
        case .end: return .end(room: try reader.room())
        case .typing: return .typing(room: try reader.room())
        case .activity: return .activity
        case .logout: return .logout
        case .transcript:
            let room = try reader.room()
            let address = try reader.string("to", maxBytes: 254)
            guard Integration.isPlausibleAddress(address) else {
                throw PipelineError(.invalidField, "field 'to' must be an e-mail address such as name@example.org")
            }
            return .transcript(room: room, to: address)
        case .assign:
            return .assign(room: try reader.room(), user: try reader.identifier("user", maxBytes: 64))
        case .admin:
            return .admin(try adminRequest(from: reader))
        case .availability: return .availability(org: try reader.org())
        case .presence:
            let state = try reader.string("state", maxBytes: 16)
            guard let presence = Presence(rawValue: state), presence != .offline else {
                throw PipelineError(.invalidField, "field 'state' must be 'available' or 'away'")
            }
            return .presence(presence)
        case .team: return .team
        case .claim: return .claim(room: try reader.room())
        case .transfer:
            let room = try reader.room()
            let to: String?
            if reader.isNull("to") {
                to = nil
            } else {
                to = try reader.identifier("to", maxBytes: 64)
            }
            let note = try reader.optionalString("note", maxBytes: Handoff.maxNoteBytes)
                .map { TypedText.clean($0, as: .multiLine).trimmingCharacters(in: .whitespacesAndNewlines) }
            return .transfer(room: room, to: to, note: note?.isEmpty == false ? note : nil)
        case .read:
            let room = try reader.room()
            guard let seq = try reader.optionalInteger("seq"), seq >= 1 else {
                throw PipelineError(.invalidField, "field 'seq' must be a whole number of at least 1")
            }
            return .read(room: room, seq: UInt64(seq))
        case .replies: return .replies
        case .attach, .download:
            throw PipelineError(.unknownType, "'\(kind.rawValue)' is not a WebSocket frame: files go over HTTP (POST /attachments, GET /attachments/ID)")
        case .api:
            throw PipelineError(.unknownType, "'api' is not a WebSocket frame: integrations call the HTTP API under /api/v1")
        }
    }

    private static func adminRequest(from reader: FieldReader) throws -> AdminRequest {
        let name = try reader.string("op", maxBytes: 40)
        guard let op = AdminRequest.Op(rawValue: name) else {
            let known = AdminRequest.Op.allCases.map(\.rawValue).joined(separator: ", ")
            throw PipelineError(.invalidField, "unknown admin op '\(TypedText.clean(name, as: .singleLine))'; known ops: \(known)")
        }
        switch op {
        case .pipelineGet: return .pipeline
        case .pipelineCheck, .pipelineReplace:
            return .replacePipeline(
                text: try reader.string("text", maxBytes: AdminRequest.maxPipelineBytes),
                base: try reader.optionalString("base", maxBytes: 64), apply: op == .pipelineReplace)
        case .hipaaEnable:
            return .enableHIPAA(BAAAttestation(
                signedOn: TypedText.clean(try reader.string("baaSignedOn", maxBytes: 20), as: .singleLine),
                officerName: TypedText.clean(try reader.string("privacyOfficer", maxBytes: 200), as: .singleLine),
                officerEmail: try reader.string("privacyOfficerEmail", maxBytes: 254)))
        case .hipaaDisable: return .disableHIPAA(purge: try reader.optionalBool("purge") ?? false)
        case .usersList: return .users
        case .usersAdd:
            return .addUser(
                name: try reader.userName(), role: try reader.role(), password: Password(try reader.string("password", maxBytes: 1024)),
                displayName: try reader.has("displayName") ? reader.displayName() : nil)
        case .usersSetDisplayName:
            return .setDisplayName(user: try reader.userName(), displayName: reader.isNull("displayName") ? nil : try reader.displayName())
        case .usersDisable: return .setDisabled(user: try reader.userName(), disabled: true)
        case .usersEnable: return .setDisabled(user: try reader.userName(), disabled: false)
        case .usersSetRole: return .setRole(user: try reader.userName(), role: try reader.role())
        case .usersReset2FA: return .resetSecondFactor(user: try reader.userName())
        case .usersUnlock: return .unlock(user: try reader.userName())
        case .auditList:
            let limit = try reader.optionalInteger("limit") ?? 100
            guard limit >= 1 && limit <= AdminRequest.maxAuditEvents else {
                throw PipelineError(.invalidField, "field 'limit' must be between 1 and \(AdminRequest.maxAuditEvents)")
            }
            return .audit(limit: Int(limit), before: try reader.optionalInteger("before"))
        case .auditVerify: return .verifyAudit
        case .repliesList: return .replies
        case .repliesSet: return .saveReply(CannedReply(name: try reader.replyName(), text: try reader.replyText()))
        case .repliesDelete: return .deleteReply(name: try reader.replyName())
        case .tokensList: return .tokens
        case .tokensCreate:
            let days = try reader.optionalInteger("expiresDays") ?? Int64(AdminRequest.defaultTokenDays)
            guard days >= Int64(AdminRequest.tokenDays.lowerBound) && days <= Int64(AdminRequest.tokenDays.upperBound) else {
                throw PipelineError(.invalidField, "field 'expiresDays' must be a whole number from 1 to 365")
            }
            return .createToken(
                integration: try reader.identifier("integration", maxBytes: 64), scopes: try reader.scopes(), expiresDays: Int(days),
                allowFrom: try reader.cidrBlocks("allowFrom"))
        case .tokensApprove:
            return .approveToken(
                id: try reader.tokenID(), totp: try reader.optionalString("totp", maxBytes: 64).map { $0.filter { !$0.isWhitespace } })
        case .tokensRevoke: return .revokeToken(id: try reader.tokenID())
        }
    }
}

/// Typed access to a frame's fields with precise error messages (never echoing values).
private struct FieldReader {
    /// A frame of strings only (the common shape, parsed by ``FlatJSON``) or any JSON object.
    private let strings: [String: String]?
    private let values: [String: Any]

    init(strings: [String: String]) {
        self.strings = strings
        self.values = [:]
    }

    init(values: [String: Any]) {
        self.strings = nil
        self.values = values
    }

    func has(_ name: String) -> Bool {
        strings.map { $0[name] != nil } ?? (values[name] != nil)
    }

    /// Whether the field is present and JSON `null`.
    func isNull(_ name: String) -> Bool {
        strings == nil && values[name] is NSNull
    }

    /// The field's value as JSON gives it (null included), for the rarer non-string fields.
    private func value(_ name: String) -> Any? {
        strings.map { $0[name] } ?? values[name]
    }

    /// A string field; absent (or null, when `nullable`) gives nil.
    func optionalString(_ name: String, maxBytes: Int, nullable: Bool = true) throws -> String? {
        let text: String
        if let strings {
            guard let value = strings[name] else { return nil }
            text = value
        } else {
            guard let raw = values[name], !(nullable && raw is NSNull) else { return nil }
            guard let value = raw as? String else {
                throw PipelineError(.invalidField, "field '\(name)' must be a string")
            }
            text = value
        }
        guard text.utf8.count <= maxBytes else {
            throw PipelineError(.invalidField, "field '\(name)' is longer than \(maxBytes) bytes")
        }
        return text
    }

    /// A string naming something (a user, a room): refused, not cleaned, when it holds a control,
    /// DEL, C1 or bidirectional-control character, newline and tab included.
    func identifier(_ name: String, maxBytes: Int) throws -> String {
        let text = try string(name, maxBytes: maxBytes)
        guard !TypedText.hasControlCharacters(text) else {
            throw PipelineError(.invalidField, "field '\(name)' must not contain control characters")
        }
        return text
    }

    func string(_ name: String, maxBytes: Int) throws -> String {
        guard let text = try optionalString(name, maxBytes: maxBytes), !text.isEmpty else {
            throw PipelineError(.invalidField, "field '\(name)' is required")
        }
        return text
    }

    /// The optional pre-chat form: an object of known string fields; empty values are dropped.
    func profile() throws -> VisitorProfile? {
        guard let raw = value("profile"), !(raw is NSNull) else { return nil }
        guard let object = raw as? [String: Any] else {
            throw PipelineError(.invalidField, "field 'profile' must be an object of strings")
        }
        var values: [String: String] = [:]
        for (key, value) in object {
            guard let limit = VisitorProfile.fieldLimits[key] else {
                let known = VisitorProfile.fieldLimits.keys.sorted().joined(separator: ", ")
                throw PipelineError(.invalidField, "field 'profile.\(TypedText.clean(String(key.prefix(40)), as: .singleLine))' is not a pre-chat field; known: \(known)")
            }
            guard let text = value as? String else {
                throw PipelineError(.invalidField, "field 'profile.\(key)' must be a string")
            }
            guard text.utf8.count <= limit else {
                throw PipelineError(.invalidField, "field 'profile.\(key)' is longer than \(limit) bytes")
            }
            let typed = TypedText.clean(text, as: VisitorProfile.multiLineFields.contains(key) ? .multiLine : .singleLine)
            let trimmed = typed.trimmingCharacters(in: .whitespacesAndNewlines)
            if !trimmed.isEmpty { values[key] = trimmed }
        }
        return values.isEmpty ? nil : VisitorProfile(fields: values)
    }

    func optionalBool(_ name: String) throws -> Bool? {
        guard let raw = value(name), !(raw is NSNull) else { return nil }
        guard let number = raw as? NSNumber, Self.isBoolean(number) else {
            throw PipelineError(.invalidField, "field '\(name)' must be true or false")
        }
        return number.boolValue
    }

    /// JSON `true`/`false` arrive as NSNumber's boolean subclass; plain numbers do not.
    private static func isBoolean(_ number: NSNumber) -> Bool {
        ObjectIdentifier(type(of: number)) == ObjectIdentifier(type(of: NSNumber(value: true)))
    }

    func optionalInteger(_ name: String) throws -> Int64? {
        guard let raw = value(name), !(raw is NSNull) else { return nil }
        guard let number = raw as? NSNumber, !Self.isBoolean(number),
              let value = Int64(exactly: number.doubleValue) else {
            throw PipelineError(.invalidField, "field '\(name)' must be a whole number")
        }
        return value
    }

    /// A staff login name: 1-64 letters, digits, '.', '_' or '-'.
    func userName() throws -> String {
        let name = try string("user", maxBytes: 64)
        guard StaffUser.isValidName(name) else {
            throw PipelineError(.invalidField, "field 'user' must be 1-64 letters, digits, '.', '_' or '-'")
        }
        return name
    }

    /// `displayName`: 1-64 characters once cleaned as a single line and trimmed.
    func displayName() throws -> String {
        let text = try string("displayName", maxBytes: 1024)
        guard let name = StaffUser.displayName(from: text) else {
            throw PipelineError(.invalidField, "field 'displayName' must be 1-\(StaffUser.maxDisplayNameLength) characters")
        }
        return name
    }

    /// A canned reply's `name`: 1-40 characters once cleaned as a single line and trimmed.
    func replyName() throws -> String {
        let text = try string("name", maxBytes: 1024)
        guard let name = CannedReply.name(from: text) else {
            throw PipelineError(.invalidField, "field 'name' must be 1-\(CannedReply.maxNameLength) characters on one line")
        }
        return name
    }

    /// A canned reply's `text`: 1-2,000 bytes, cleaned as multi-line typed text, not blank.
    func replyText() throws -> String {
        let raw = try string("text", maxBytes: CannedReply.maxTextBytes)
        guard let text = CannedReply.text(from: raw) else {
            throw PipelineError(.invalidField, "field 'text' must not be empty")
        }
        return text
    }

    /// An array of strings, each at most `maxBytes`; absent (or null) gives nil.
    func optionalStrings(_ name: String, maxItems: Int, maxBytes: Int) throws -> [String]? {
        guard let raw = value(name), !(raw is NSNull) else { return nil }
        guard let items = raw as? [Any], let texts = items as? [String] else {
            throw PipelineError(.invalidField, "field '\(name)' must be an array of strings")
        }
        guard texts.count <= maxItems else { throw PipelineError(.invalidField, "field '\(name)' lists more than \(maxItems) items") }
        guard texts.allSatisfy({ $0.utf8.count <= maxBytes }) else {
            throw PipelineError(.invalidField, "field '\(name)' has an item longer than \(maxBytes) bytes")
        }
        return texts
    }

    /// A token's `scopes`: a non-empty array of known scope names, each once.
    func scopes() throws -> [APIScope] {
        let known = APIScope.allCases.map(\.rawValue).joined(separator: ", ")
        let names = try optionalStrings("scopes", maxItems: APIScope.allCases.count, maxBytes: 40) ?? []
        let scopes = names.compactMap(APIScope.init(rawValue:))
        guard !names.isEmpty, scopes.count == names.count, Set(scopes).count == scopes.count else {
            throw PipelineError(.invalidField, "field 'scopes' must list some of \(known), each once")
        }
        return scopes.sorted()
    }

    /// An optional array of CIDR blocks such as `10.0.0.0/8`.
    func cidrBlocks(_ name: String) throws -> [CIDRBlock] {
        let texts = try optionalStrings(name, maxItems: AdminRequest.maxTokenAddresses, maxBytes: 64) ?? []
        let blocks = texts.compactMap(CIDRBlock.init)
        guard blocks.count == texts.count else {
            throw PipelineError(.invalidField, "field '\(name)' must list CIDR blocks such as 10.0.0.0/8 or 2001:db8::/32")
        }
        return blocks
    }

    /// A token's id in field `token` (`id` is the frame's correlation id): `tok_` and 16
    /// lower-case hex digits.
    func tokenID() throws -> APITokenID {
        guard let id = APITokenID(checking: try string("token", maxBytes: 64)) else {
            throw PipelineError(.invalidField, "field 'token' must be a token id: tok_ and 16 hex digits")
        }
        return id
    }

    func role() throws -> Role {
        guard let role = Role(rawValue: try string("role", maxBytes: 16)) else {
            throw PipelineError(.invalidField, "field 'role' must be 'staff' or 'admin'")
        }
        return role
    }

    func org() throws -> OrgID {
        let text = try string("org", maxBytes: 64)
        guard OrgID.isValid(text) else {
            throw PipelineError(.invalidField, "field 'org' must be an organisation id (a-z, 0-9, -)")
        }
        return OrgID(text)
    }

    func room() throws -> ConversationID {
        ConversationID(try identifier("room", maxBytes: 64))
    }
}
