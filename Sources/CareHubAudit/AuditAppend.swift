import CareHubCore
import CareHubCrypto
import Foundation

/// Events chained after a trail's tip, with the signed head that covers them: what every store
/// writes in the transaction that appends them (the rows with their ids and chain values, then
/// one row of `audit_heads`), computed the same way whatever the store.
public struct AuditAppend: Sendable {
    /// One row to insert.
    public struct Row: Sendable, Hashable {
        /// The row's id: the previous one's plus one.
        public let id: Int64
        public let event: AuditEvent
        /// Its chain value.
        public let hash: [UInt8]
    }

    /// The rows, in id order.
    public let rows: [Row]
    /// The first event of the keyed chain, as the head names it.
    public let keyedFrom: Int64
    /// When the head was signed, in milliseconds since the epoch.
    public let at: Int64
    /// The signed head over the last row, to store and, once committed, to publish.
    public let head: AuditHead
}

extension AuditKeys {
    /// Chains `events` (not empty) after the tip `tipID` valued `tipHash` (0 and nil on an empty
    /// trail; a nil value also chains from ``AuditChain/genesis``), and signs the head over the
    /// last of them, naming `keyedFrom` and the time `at` (milliseconds).
    public func chain(_ events: [AuditEvent], afterID tipID: Int64, hash tipHash: [UInt8]?, keyedFrom: Int64, at: Int64) -> AuditAppend {
        precondition(!events.isEmpty, "an append chains at least one event")
        var previous = tipHash ?? AuditChain.genesis
        var id = tipID
        var rows: [AuditAppend.Row] = []
        rows.reserveCapacity(events.count)
        for event in events {
            id += 1
            let hash = AuditChain.hash(key: chain, previous: previous, id: id, event: event)
            rows.append(AuditAppend.Row(id: id, event: event, hash: hash))
            previous = hash
        }
        let signature = head.mac(AuditChain.headMessage(seq: id, keyedFrom: keyedFrom, at: at, hash: previous))
        return AuditAppend(rows: rows, keyedFrom: keyedFrom, at: at, head: AuditHead(seq: id, hash: previous, signature: signature))
    }

    /// Where the keyed chain starts on a trail no signed head describes yet: the first row after
    /// the last legacy checkpoint that is validly signed under this key (1 on a new trail), so
    /// that unkeyed rows nothing signed are never vouched for.
    public func keyedFrom(checkpoints: [(lastEventID: Int64, hash: [UInt8], mac: [UInt8])]) -> Int64 {
        var last: Int64 = 0
        for checkpoint in checkpoints where checkpoint.lastEventID > last {
            let expected = head.mac(AuditChain.checkpointMessage(id: checkpoint.lastEventID, hash: checkpoint.hash))
            if constantTimeEquals(expected, checkpoint.mac) { last = checkpoint.lastEventID }
        }
        return last + 1
    }
}

extension AuditChain {
    /// A row's time as read back: `milliseconds` since the epoch.
    public static func date(milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }
}

/// A stored event with its row id.
public struct AuditEntry: Sendable, Hashable {
    public let id: Int64
    public let event: AuditEvent

    /// An entry as a store reads it.
    public init(id: Int64, event: AuditEvent) {
        self.id = id
        self.event = event
    }

    /// The event's fields as JSON (`id`, `at` in epoch milliseconds, `org`, `actor`,
    /// `address`, `action`, `target`, `detail`), for `carehub audit export` and the admin API.
    public func write(to writer: inout JSONWriter) {
        writer.field("id", id)
        writer.field("at", event.at.epochMilliseconds)
        writer.field("org", event.org.rawValue)
        writer.field("actor", event.actor)
        writer.field("address", event.address)
        writer.field("action", event.action)
        writer.field("target", event.target)
        writer.field("detail", event.detail)
    }
}

/// A verdict for one organisation's admin: the whole chain is checked, but only that
/// organisation's events are counted or named.
public struct AuditOrgVerdict: Sendable, Equatable, CustomStringConvertible {
    /// Whether the whole chain holds.
    public let holds: Bool
    /// The organisation's events in the trail.
    public let events: Int
    /// The first event that does not hold, when it is the organisation's own.
    public let brokenAt: Int64?
    /// Why the chain does not hold (only the organisation's events are named).
    public let reason: String?

    /// The verdict `org`'s admin may see of the whole chain's `verdict`, given the organisation
    /// of the row that broke it (``AuditChainVerifier/finish(anchor:)``) and the organisation's
    /// event count.
    public init(_ verdict: AuditVerdict, brokenOrg: String?, for org: OrgID, events: Int) {
        self.events = events
        switch verdict {
        case .holds:
            (holds, brokenAt, reason) = (true, nil, nil)
        case .broken(let id, let reason) where brokenOrg == org.rawValue:
            (holds, brokenAt, self.reason) = (false, id, reason)
        case .broken:
            (holds, brokenAt) = (false, nil)
            reason = "an event outside this organisation or a signed head was altered or removed; the hub's operator can find it with carehub audit verify"
        }
    }

    public var description: String {
        if holds { return "the audit chain holds: \(events) events of this organisation" }
        if let brokenAt, let reason { return "the audit chain is broken at event \(brokenAt): \(reason)" }
        return "the audit chain is broken: \(reason ?? "")"
    }
}
