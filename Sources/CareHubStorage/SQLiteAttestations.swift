import CareHubCore
import Foundation
import GRDB

/// BAA attestations recorded when an organisation enters HIPAA mode, each with its audit event in
/// the same transaction.
public struct SQLiteAttestations: Sendable {
    /// An attestation as recorded.
    public struct Record: Sendable, Hashable {
        /// What was attested.
        public let attestation: BAAAttestation
        /// The admin who recorded it.
        public let recordedBy: String
        /// When.
        public let recordedAt: Date
    }

    private let database: CareHubDatabase

    private let audit: SQLiteAuditLog?

    /// Recording appends its audit event to `audit`'s chain; without it only reading works.
    public init(database: CareHubDatabase, audit: SQLiteAuditLog? = nil) {
        self.database = database
        self.audit = audit
    }

    /// Records `attestation` for `org` and appends `audit`.
    public func record(_ attestation: BAAAttestation, org: OrgID, by actor: String, at date: Date, audit event: AuditEvent) async throws {
        guard let audit else { throw StorageError.auditKeyMissing }
        try await database.pool.write { db in
            try db.execute(
                sql: "INSERT INTO baa_attestations (org, signed_on, officer_name, officer_email, recorded_by, recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [org.rawValue, attestation.signedOn, attestation.officerName, attestation.officerEmail, actor, date.timeIntervalSince1970])
            try audit.append([event], within: db)
        }
    }

    /// The organisation's latest attestation, if any.
    public func latest(org: OrgID) async throws -> Record? {
        try await database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM baa_attestations WHERE org = ? ORDER BY id DESC LIMIT 1", arguments: [org.rawValue]).map { row in
                Record(
                    attestation: BAAAttestation(signedOn: row["signed_on"], officerName: row["officer_name"], officerEmail: row["officer_email"]),
                    recordedBy: row["recorded_by"], recordedAt: Date(timeIntervalSince1970: row["recorded_at"]))
            }
        }
    }
}
