import CareHubCore
import CareHubCrypto
import Foundation

/// The canonical encoding and hash of audit rows.
public enum AuditChain {
    /// The value before the first row.
    public static let genesis = [UInt8](repeating: 0, count: 32)

    /// A row's time as stored and hashed: milliseconds since the epoch.
    public static func milliseconds(_ date: Date) -> Int64 { date.epochMilliseconds }

    /// The unkeyed chain of older trails: SHA-256 over the previous hash and the length-prefixed
    /// fields, id and time included.
    public static func hash(previous: [UInt8], id: Int64, event: AuditEvent) -> [UInt8] {
        SHA256.hash(encoding(prefix: [], previous: previous, id: id, event: event))
    }

    /// The keyed chain: HMAC-SHA256 under the chain key over the same bytes.
    public static func hash(key: HMACSHA256Key, previous: [UInt8], id: Int64, event: AuditEvent) -> [UInt8] {
        key.mac(ofPrefixed: encoding(prefix: key.messagePrefix, previous: previous, id: id, event: event))
    }

    private static func encoding(prefix: [UInt8], previous: [UInt8], id: Int64, event: AuditEvent) -> [UInt8] {
        // Built in one buffer of the right size: every delivery of a HIPAA message hashes a row.
        let (id, at) = (String(id), String(milliseconds(event.at)))
        var bytes: [UInt8] = []
        bytes.reserveCapacity(prefix.count + previous.count + 8 * 4 + id.utf8.count + at.utf8.count + event.org.rawValue.utf8.count
            + event.actor.utf8.count + event.address.utf8.count + event.action.utf8.count + event.target.utf8.count + event.detail.utf8.count)
        bytes.append(contentsOf: prefix)
        bytes.append(contentsOf: previous)
        func add(_ field: String) {
            withUnsafeBytes(of: UInt32(field.utf8.count).bigEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: field.utf8)
        }
        add(id)
        add(at)
        add(event.org.rawValue)
        add(event.actor)
        add(event.address)
        add(event.action)
        add(event.target)
        add(event.detail)
        return bytes
    }

    /// What a legacy checkpoint's signature covers.
    public static func checkpointMessage(id: Int64, hash: [UInt8]) -> [UInt8] {
        Array("carehub.audit.checkpoint.v1|\(id)|".utf8) + hash
    }

    /// What a signed head's signature covers.
    public static func headMessage(seq: Int64, keyedFrom: Int64, at: Int64, hash: [UInt8]) -> [UInt8] {
        Array("carehub.audit.head.v2|\(seq)|\(keyedFrom)|\(at)|".utf8) + hash
    }
}

/// The audit chain's keys, both from the audit key: the chain's MAC key (derived for that use
/// only) and the key that signs heads and, in older trails, checkpoints.
public struct AuditKeys: Sendable {
    /// The chain's MAC key.
    public let chain: HMACSHA256Key
    /// The key that signs heads and legacy checkpoints.
    public let head: HMACSHA256Key

    /// Both keys, from the audit key.
    public init(_ auditKey: SymmetricKey) throws {
        let bytes = auditKey.withUnsafeBytes { Array($0) }
        var derived = try HKDF.sha256(key: bytes, salt: Array("carehub.audit".utf8), info: Array("chain-hmac.v2".utf8), outputByteCount: 32)
        chain = HMACSHA256Key(derived)
        head = HMACSHA256Key(bytes)
        for index in derived.indices { derived[index] = 0 }
    }
}

/// A signed head as published outside the database: `seq=N hash=HEX sig=HEX`.
public struct AuditHead: Sendable, Hashable, CustomStringConvertible {
    /// The last event it covers.
    public let seq: Int64
    /// That event's chain value.
    public let hash: [UInt8]
    /// The head's HMAC under the audit key.
    public let signature: [UInt8]

    /// A head with these fields.
    public init(seq: Int64, hash: [UInt8], signature: [UInt8]) {
        self.seq = seq
        self.hash = hash
        self.signature = signature
    }

    /// Parses `seq=N hash=HEX sig=HEX`, alone or at the end of a log line (`audit head seq=…`).
    public init?(parsing text: String) {
        var fields: [Substring: Substring] = [:]
        for word in text.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
            guard let equals = word.firstIndex(of: "=") else { continue }
            fields[word[..<equals]] = word[word.index(after: equals)...]
        }
        guard let seqText = fields["seq"], let seq = Int64(seqText), seq > 0,
              let hash = fields["hash"].flatMap(Hex.decode(_:)), hash.count == 32,
              let signature = fields["sig"].flatMap(Hex.decode(_:)), signature.count == 32 else { return nil }
        self.init(seq: seq, hash: hash, signature: signature)
    }

    public var description: String {
        "seq=\(seq) hash=\(Hex.encode(hash)) sig=\(Hex.encode(signature))"
    }
}

/// Where committed signed heads go to be kept outside the database (the hub logs them and
/// appends them to the anchor file). An implementation must not block: `publish` is called on the
/// committing writer's thread, right after the commit.
public protocol AuditHeadSink: Sendable {
    /// A head was committed; it covers every event up to `head.seq`.
    func publish(_ head: AuditHead)
    /// Returns once the newest published head is kept.
    func flush()
}

/// A verdict on an audit trail.
public enum AuditVerdict: Sendable, Equatable, CustomStringConvertible {
    /// Every row, signed head and checkpoint holds; `checkpoints` counts signed heads and
    /// checkpoints.
    case holds(events: Int, checkpoints: Int)
    case broken(eventID: Int64, reason: String)

    public var description: String {
        switch self {
        case .holds(let events, let checkpoints): "the audit chain holds: \(events) events, \(checkpoints) signed heads"
        case .broken(let id, let reason): "the audit chain is broken at event \(id): \(reason)"
        }
    }
}

/// Checks a trail as a store reads it out, whatever the store: first every signed head and
/// legacy checkpoint (in any order), then every row in id order, then ``finish(anchor:)``. Each
/// step returns false once the trail does not hold; ``finish(anchor:)`` then gives the first
/// thing that does not, with the organisation of the row it is in when it is a row.
public struct AuditChainVerifier: Sendable {
    private struct StoredHead {
        let seq: Int64
        let hash: [UInt8]
        let mac: [UInt8]
        let legacy: Bool
    }

    private let keys: AuditKeys
    private var heads: [StoredHead] = []
    private var boundary: Int64?
    private var sorted = false
    private var previous = AuditChain.genesis
    private var expectedID: Int64 = 1
    private var next = 0
    private var failure: (verdict: AuditVerdict, org: String?)?

    /// A verifier under the audit key.
    public init(auditKey: SymmetricKey) throws {
        keys = try AuditKeys(auditKey)
    }

    /// A signed head as stored (`audit_heads`).
    public mutating func head(seq: Int64, hash: [UInt8], keyedFrom from: Int64, at: Int64, mac: [UInt8]) -> Bool {
        guard failure == nil else { return false }
        let expected = keys.head.mac(AuditChain.headMessage(seq: seq, keyedFrom: from, at: at, hash: hash))
        guard constantTimeEquals(expected, mac) else {
            return fail(.broken(eventID: seq, reason: "the signed head at event \(seq) has an invalid signature"))
        }
        guard boundary == nil || boundary == from else {
            return fail(.broken(eventID: seq, reason: "the signed head at event \(seq) names another start of the keyed chain"))
        }
        boundary = from
        heads.append(StoredHead(seq: seq, hash: hash, mac: mac, legacy: false))
        return true
    }

    /// A signed checkpoint of a trail written before the chain was keyed (`audit_checkpoints`).
    public mutating func checkpoint(id: Int64, lastEventID: Int64, hash: [UInt8], mac: [UInt8]) -> Bool {
        guard failure == nil else { return false }
        let expected = keys.head.mac(AuditChain.checkpointMessage(id: lastEventID, hash: hash))
        guard constantTimeEquals(expected, mac) else {
            return fail(.broken(eventID: lastEventID, reason: "checkpoint \(id) has an invalid signature"))
        }
        heads.append(StoredHead(seq: lastEventID, hash: hash, mac: mac, legacy: true))
        return true
    }

    /// The next row, in id order, with the chain value stored with it.
    public mutating func row(id: Int64, event: AuditEvent, stored: [UInt8]) -> Bool {
        guard failure == nil else { return false }
        if !sorted {
            heads.sort { $0.seq < $1.seq }
            sorted = true
        }
        if id != expectedID {
            return fail(.broken(eventID: expectedID, reason: id > expectedID ? "event \(expectedID) is missing (deleted)" : "events are out of order"))
        }
        let keyed = boundary.map { id >= $0 } ?? false
        let recomputed = keyed
            ? AuditChain.hash(key: keys.chain, previous: previous, id: id, event: event)
            : AuditChain.hash(previous: previous, id: id, event: event)
        if stored != recomputed {
            return fail(.broken(eventID: id, reason: mismatch(stored: stored, id: id, event: event, keyed: keyed)), org: event.org.rawValue)
        }
        while next < heads.count && heads[next].seq == id {
            guard heads[next].hash == stored else {
                let what = heads[next].legacy ? "a signed checkpoint" : "the signed head"
                return fail(.broken(eventID: id, reason: "the chain no longer matches \(what) at event \(id)"), org: event.org.rawValue)
            }
            next += 1
        }
        previous = stored
        expectedID += 1
        return true
    }

    /// The verdict once every row was given, checked against `anchor` (a head kept outside the
    /// store) when there is one; `brokenOrg` is the organisation of the row that does not hold.
    public mutating func finish(anchor: AuditHead?) -> (verdict: AuditVerdict, brokenOrg: String?) {
        if let failure { return (failure.verdict, failure.org) }
        if !sorted { heads.sort { $0.seq < $1.seq } }
        let count = expectedID - 1
        if next < heads.count {
            let seq = heads[next].seq
            return (.broken(eventID: seq, reason: "a signed head covers event \(seq), which is gone (events were deleted from the end)"), nil)
        }
        let covered = heads.last?.seq ?? 0
        if count > 0 && heads.isEmpty {
            return (.broken(eventID: 1, reason: "the trail has \(count) events but no signed head (the heads were deleted)"), nil)
        }
        if count > covered {
            return (.broken(eventID: covered + 1, reason: "event \(covered + 1) and later are not covered by a signed head (appended or rewritten after the last one)"), nil)
        }
        if let anchor {
            guard anchor.seq <= count else {
                return (.broken(eventID: count + 1, reason: "the trail ends at event \(count), before the anchored head at event \(anchor.seq) (events were removed)"), nil)
            }
            guard let held = heads.first(where: { !$0.legacy && $0.seq == anchor.seq }) else {
                return (.broken(eventID: anchor.seq, reason: "the anchored head at event \(anchor.seq) is not in the trail (its signed heads were replaced)"), nil)
            }
            guard held.hash == anchor.hash, constantTimeEquals(held.mac, anchor.signature) else {
                return (.broken(eventID: anchor.seq, reason: "the trail's head at event \(anchor.seq) differs from the anchored one (the trail was rewritten)"), nil)
            }
        }
        return (.holds(events: Int(count), checkpoints: heads.count), nil)
    }

    private mutating func fail(_ verdict: AuditVerdict, org: String? = nil) -> Bool {
        failure = (verdict, org)
        return false
    }

    /// Why a row's stored value is not the one recomputed.
    private func mismatch(stored: [UInt8], id: Int64, event: AuditEvent, keyed: Bool) -> String {
        if keyed && stored == AuditChain.hash(previous: previous, id: id, event: event) {
            return "it carries an unkeyed hash where the chain is keyed (rewritten, or written after the last signed checkpoint of an older version)"
        }
        if !keyed && stored == AuditChain.hash(key: keys.chain, previous: previous, id: id, event: event) {
            return "it is chained under the audit key, but no signed head says so (the heads were deleted)"
        }
        return "its contents or position were altered (edited, swapped or reordered)"
    }
}
