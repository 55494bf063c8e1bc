import CareHubAudit
import CareHubCore
import CareHubCrypto
import Foundation
import Testing

/// The verifier on its own, fed as a store other than SQLite would feed it.
@Suite("audit chain verifier")
struct AuditChainVerifierTests {
    let key = SymmetricKey(randomByteCount: 32)

    /// Rows 1…n chained under `key`, and the head that signs them.
    func trail(_ orgs: [String]) throws -> (rows: [(Int64, AuditEvent, [UInt8])], head: AuditHead, at: Int64) {
        let keys = try AuditKeys(key)
        var previous = AuditChain.genesis
        var rows: [(Int64, AuditEvent, [UInt8])] = []
        for (index, org) in orgs.enumerated() {
            let event = AuditEvent(at: Date(timeIntervalSince1970: 1_800_000_000 + Double(index)), org: OrgID(org), actor: "joy", address: "", action: "login.success")
            let hash = AuditChain.hash(key: keys.chain, previous: previous, id: Int64(index + 1), event: event)
            rows.append((Int64(index + 1), event, hash))
            previous = hash
        }
        let at: Int64 = 1_800_000_100_000
        let mac = keys.head.mac(AuditChain.headMessage(seq: Int64(orgs.count), keyedFrom: 1, at: at, hash: previous))
        return (rows, AuditHead(seq: Int64(orgs.count), hash: previous, signature: mac), at)
    }

    func verify(_ rows: [(Int64, AuditEvent, [UInt8])], head: AuditHead, at: Int64, anchor: AuditHead? = nil) throws -> (verdict: AuditVerdict, brokenOrg: String?) {
        var verifier = try AuditChainVerifier(auditKey: key)
        let signed = verifier.head(seq: head.seq, hash: head.hash, keyedFrom: 1, at: at, mac: head.signature)
        #expect(signed)
        for (id, event, stored) in rows where !verifier.row(id: id, event: event, stored: stored) { break }
        return verifier.finish(anchor: anchor)
    }

    @Test func anIntactTrailHoldsAndMatchesItsAnchor() throws {
        let (rows, head, at) = try trail(["a", "b", "a"])
        #expect(try verify(rows, head: head, at: at, anchor: head).verdict == .holds(events: 3, checkpoints: 1))
    }

    @Test func anEditedRowIsNamedWithItsOrganisation() throws {
        var (rows, head, at) = try trail(["a", "b", "a"])
        let edited = AuditEvent(at: rows[1].1.at, org: OrgID("b"), actor: "mallory", address: "", action: "login.success")
        rows[1] = (2, edited, rows[1].2)
        let result = try verify(rows, head: head, at: at)
        #expect(result.brokenOrg == "b")
        var brokenAt: Int64?
        if case .broken(let id, _) = result.verdict { brokenAt = id }
        #expect(brokenAt == 2, "\(result.verdict)")
    }

    @Test func aDeletedRowOrAForgedHeadIsFound() throws {
        let (rows, head, at) = try trail(["a", "b", "a"])
        #expect(try verify([rows[0], rows[2]], head: head, at: at).verdict == .broken(eventID: 2, reason: "event 2 is missing (deleted)"))
        var verifier = try AuditChainVerifier(auditKey: key)
        let forged = verifier.head(seq: head.seq, hash: head.hash, keyedFrom: 1, at: at + 1, mac: head.signature)
        #expect(!forged)
        let truncated = try verify(Array(rows.prefix(2)), head: head, at: at)
        #expect(truncated.verdict == .broken(eventID: 3, reason: "a signed head covers event 3, which is gone (events were deleted from the end)"))
    }
}
