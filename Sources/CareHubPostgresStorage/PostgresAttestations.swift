import CareHubCore
import CareHubPostgres
import Foundation

/// BAA attestations recorded when an organisation enters HIPAA mode, each with its audit event in
/// the same transaction, as `SQLiteAttestations` records them.
public struct PostgresAttestations: Sendable {
    /// An attestation as recorded.
    public struct Record: Sendable, Hashable {
        /// What was attested.
        public let attestation: BAAAttestation
        /// The admin who recorded it.
        public let recordedBy: String
        /// When.
        public let recordedAt: Date
    }

    private let database: PostgresDatabase

    private let audit: PostgresAuditLog?

    /// Recording appends its audit event to `audit`'s chain; without it only reading works.
    public init(database: PostgresDatabase, audit: PostgresAuditLog? = nil) {
        self.database = database
        self.audit = audit
    }

    /// Records `attestation` for `org` and appends `audit`.
    public func record(_ attestation: BAAAttestation, org: OrgID, by actor: String, at date: Date, audit event: AuditEvent) async throws {
        guard let audit else { throw PostgresStorageError.auditKeyMissing }
        try await database.client.transaction { tx in
            try tx.execute(
                "INSERT INTO baa_attestations (org, signed_on, officer_name, officer_email, recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6)",
                [.text(org.rawValue), .text(attestation.signedOn), .text(attestation.officerName), .text(attestation.officerEmail), .text(actor),
                 .double(date.timeIntervalSince1970)])
            try audit.append([event], in: tx)
        }
    }

    /// The organisation's latest attestation, if any (the last recorded: ids come from the identity).
    public func latest(org: OrgID) async throws -> Record? {
        try await database.client.query("SELECT * FROM baa_attestations WHERE org = $1 ORDER BY id DESC LIMIT 1", [.text(org.rawValue)]).first.map { row in
            Record(
                attestation: BAAAttestation(
                    signedOn: try row.string("signed_on"), officerName: try row.string("officer_name"), officerEmail: try row.string("officer_email")),
                recordedBy: try row.string("recorded_by"), recordedAt: Date(timeIntervalSince1970: try row.double("recorded_at")))
        }
    }
}
