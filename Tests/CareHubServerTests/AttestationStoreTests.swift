import CareHubCore
import CareHubCrypto
import CareHubPostgresStorage
import CareHubStorage
import Foundation
import Testing

/// BAA attestations on SQLite and on PostgreSQL: the same records, each with its audit event.
@Suite("attestation store")
struct AttestationStoreTests {
    /// An adapter under test: record and latest, as a plain tuple of what each returns.
    struct Subject {
        typealias Latest = (attestation: BAAAttestation, recordedBy: String, recordedAt: Date)
        let name: String
        let record: (BAAAttestation, OrgID, String, Date, AuditEvent) async throws -> Void
        let latest: (OrgID) async throws -> Latest?
        /// The same database without the audit key.
        let recordReadOnly: (BAAAttestation, OrgID, String, Date, AuditEvent) async throws -> Void
        let audited: () async throws -> [AuditEvent]
        let keep: Any
    }

    static func subjects() async throws -> [Subject] {
        let fixture = try KeyFixture()
        let sqliteAudit = SQLiteAuditLog(database: fixture.database, checkpointKey: SymmetricKey(randomByteCount: 32))
        let sqlite = SQLiteAttestations(database: fixture.database, audit: sqliteAudit)
        let postgres = try await PostgresStoreFixture()
        let postgresAudit = PostgresAuditLog(database: postgres.database, checkpointKey: SymmetricKey(randomByteCount: 32))
        let pg = PostgresAttestations(database: postgres.database, audit: postgresAudit)
        return [
            Subject(
                name: "sqlite", record: { try await sqlite.record($0, org: $1, by: $2, at: $3, audit: $4) },
                latest: { try await sqlite.latest(org: $0).map { ($0.attestation, $0.recordedBy, $0.recordedAt) } },
                recordReadOnly: { try await SQLiteAttestations(database: fixture.database).record($0, org: $1, by: $2, at: $3, audit: $4) },
                audited: { try sqliteAudit.entries().map(\.event) }, keep: fixture),
            Subject(
                name: "postgres", record: { try await pg.record($0, org: $1, by: $2, at: $3, audit: $4) },
                latest: { try await pg.latest(org: $0).map { ($0.attestation, $0.recordedBy, $0.recordedAt) } },
                recordReadOnly: { try await PostgresAttestations(database: postgres.database).record($0, org: $1, by: $2, at: $3, audit: $4) },
                audited: { try await postgresAudit.entries().map(\.event) }, keep: postgres),
        ]
    }

    let org = OrgID("clinic")
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    func event(_ org: OrgID) -> AuditEvent {
        AuditEvent(at: at, org: org, actor: "dr.admin", address: "local", action: "org.hipaa_attested", target: org.rawValue)
    }

    @Test func theLatestAttestationOfEachOrganisationIsTheLastRecordedWithItsEvent() async throws {
        for subject in try await Self.subjects() {
            #expect(try await subject.latest(org) == nil, "\(subject.name)")
            let first = BAAAttestation(signedOn: "2027-01-04", officerName: "Ada Lovelace", officerEmail: "ada@clinic.example")
            let second = BAAAttestation(signedOn: "2026-12-31", officerName: "Zoë Ñúñez", officerEmail: "zoe@clinic.example")
            let theirs = BAAAttestation(signedOn: "2027-02-01", officerName: "Kim", officerEmail: "kim@studio.example")
            try await subject.record(first, org, "dr.admin", at, event(org))
            try await subject.record(second, org, "dr.second", at.addingTimeInterval(60), event(org))
            try await subject.record(theirs, OrgID("studio"), "dr.studio", at, event(OrgID("studio")))
            // The last recorded, not the latest signing date.
            let latest = try #require(try await subject.latest(org), "\(subject.name)")
            #expect(latest.attestation == second && latest.recordedBy == "dr.second" && latest.recordedAt == at.addingTimeInterval(60), "\(subject.name)")
            #expect(try await subject.latest(OrgID("studio"))?.attestation == theirs, "\(subject.name)")
            #expect(try await subject.audited() == [event(org), event(org), event(OrgID("studio"))], "\(subject.name)")
        }
    }

    @Test func withoutTheAuditKeyNothingIsRecorded() async throws {
        for subject in try await Self.subjects() {
            let attestation = BAAAttestation(signedOn: "2027-01-04", officerName: "Ada Lovelace", officerEmail: "ada@clinic.example")
            await #expect(throws: (any Error).self, "\(subject.name)") {
                try await subject.recordReadOnly(attestation, self.org, "dr.admin", self.at, self.event(self.org))
            }
            #expect(try await subject.latest(org) == nil, "\(subject.name)")
            #expect(try await subject.audited().isEmpty, "\(subject.name)")
        }
    }
}
