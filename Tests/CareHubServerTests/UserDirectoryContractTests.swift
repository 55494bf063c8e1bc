import CareHubCore
import CareHubCrypto
import CareHubPostgresStorage
import CareHubStorage
import Foundation
import Testing

/// The account changes an administrator makes (command line and admin API), which both adapters
/// offer besides the ``UserDirectory`` port.
protocol UserAdministration: UserDirectory {
    func setRole(org: OrgID, name: String, role: Role, audit: AuditEvent) async throws -> Role
    func setDisabled(org: OrgID, name: String, disabled: Bool, audit: AuditEvent) async throws
    func resetSecondFactor(org: OrgID, name: String, audit: AuditEvent) async throws
    func setDisplayName(org: OrgID, name: String, displayName: String?, audit: AuditEvent) async throws -> String?
    func unlock(org: OrgID, name: String, audit: AuditEvent) async throws
}

extension SQLiteUserDirectory: UserAdministration {}
extension PostgresUserDirectory: UserAdministration {}

/// One user directory under the contract: SQLite on a real file, or PostgreSQL on a database of
/// its own; each with its audit trail, or without the audit key (read-only use).
struct UserDirectorySubject {
    /// An error an adapter reports, in the adapter's own error type.
    enum Failure {
        case userExists(org: String, user: String)
        case userNotFound(org: String, user: String)
        case auditKeyMissing
    }

    let name: String
    let users: any UserAdministration
    /// The same database without the audit key.
    let readOnly: any UserAdministration
    let audited: () async throws -> [AuditEvent]
    /// Whether `error` is `failure` as this adapter spells it.
    let reports: @Sendable (any Error, Failure) -> Bool
    let keep: Any

    static func all() async throws -> [UserDirectorySubject] {
        let fixture = try KeyFixture()
        let sqliteAudit = SQLiteAuditLog(database: fixture.database, checkpointKey: SymmetricKey(randomByteCount: 32))
        let postgres = try await PostgresStoreFixture()
        let postgresAudit = PostgresAuditLog(database: postgres.database, checkpointKey: SymmetricKey(randomByteCount: 32))
        return [
            UserDirectorySubject(
                name: "sqlite", users: SQLiteUserDirectory(database: fixture.database, audit: sqliteAudit),
                readOnly: SQLiteUserDirectory(database: fixture.database), audited: { try sqliteAudit.entries().map(\.event) },
                reports: { error, failure in
                    switch failure {
                    case .userExists(let org, let user): return error as? StorageError == .userExists(org: org, user: user)
                    case .userNotFound(let org, let user): return error as? StorageError == .userNotFound(org: org, user: user)
                    case .auditKeyMissing: return error as? StorageError == .auditKeyMissing
                    }
                },
                keep: fixture),
            UserDirectorySubject(
                name: "postgres", users: PostgresUserDirectory(database: postgres.database, audit: postgresAudit),
                readOnly: PostgresUserDirectory(database: postgres.database), audited: { try await postgresAudit.entries().map(\.event) },
                reports: { error, failure in
                    switch failure {
                    case .userExists(let org, let user): return error as? PostgresStorageError == .userExists(org: org, user: user)
                    case .userNotFound(let org, let user): return error as? PostgresStorageError == .userNotFound(org: org, user: user)
                    case .auditKeyMissing: return error as? PostgresStorageError == .auditKeyMissing
                    }
                },
                keep: postgres),
        ]
    }
}

@Suite("user directory contract")
struct UserDirectoryContractTests {
    let org = OrgID("clinic")
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    func event(_ action: String, _ target: String, detail: String = "") -> AuditEvent {
        AuditEvent(at: at, org: org, actor: "cli:root", address: "local", action: action, target: target, detail: detail)
    }

    func digest(_ byte: UInt8) -> [UInt8] { [UInt8](repeating: byte, count: 32) }

    /// Expects `body` to fail with `failure`, in the subject's error type.
    func expect(
        _ subject: UserDirectorySubject, fails failure: UserDirectorySubject.Failure, sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () async throws -> some Any
    ) async {
        let error = await #expect(throws: (any Error).self, "\(subject.name)", sourceLocation: sourceLocation) { _ = try await body() }
        #expect(error.map { subject.reports($0, failure) } == true, "\(subject.name): \(String(describing: error))", sourceLocation: sourceLocation)
    }

    @Test func usersAreUniquePerOrganisation() async throws {
        for subject in try await UserDirectorySubject.all() {
            let users = subject.readOnly
            try await users.add(StaffUser(org: org, name: "joy", role: .staff, passwordHash: "h1"), at: at, audit: nil)
            try await users.add(StaffUser(org: OrgID("studio"), name: "joy", role: .admin, passwordHash: "h2"), at: at, audit: nil)
            await expect(subject, fails: .userExists(org: "clinic", user: "joy")) {
                try await users.add(StaffUser(org: org, name: "joy", role: .admin, passwordHash: "h3"), at: at, audit: nil)
            }
            #expect(try await users.user(org: org, name: "joy")?.passwordHash == "h1", "\(subject.name)")
            #expect(try await users.user(org: OrgID("studio"), name: "joy")?.role == .admin, "\(subject.name)")
            #expect(try await users.list(org: org).map(\.name) == ["joy"], "\(subject.name)")
        }
    }

    @Test func accountsAreListedByNameInByteOrderAndReadBackWholly() async throws {
        for subject in try await UserDirectorySubject.all() {
            let users = subject.users
            let added = StaffUser(org: org, name: "nurse.joy", role: .admin, passwordHash: "h1", disabled: true, displayName: "Joy Rivera")
            try await users.add(added, at: at, audit: event("user.added", "nurse.joy"))
            for name in ["Zed", "émile", "amy"] {
                try await users.add(StaffUser(org: org, name: name, role: .staff, passwordHash: "h"), at: at, audit: nil)
            }
            #expect(try await users.list(org: org).map(\.name) == ["Zed", "amy", "nurse.joy", "émile"], "\(subject.name)")
            #expect(try await users.user(org: org, name: "nurse.joy") == added, "\(subject.name)")
            #expect(try await users.user(org: org, name: "nobody") == nil, "\(subject.name)")
            #expect(try await subject.audited() == [event("user.added", "nurse.joy")], "\(subject.name)")
        }
    }

    @Test func failuresLockTheAccountAtTheLimitAndASuccessClearsThem() async throws {
        for subject in try await UserDirectorySubject.all() {
            let users = subject.users
            try await users.add(StaffUser(org: org, name: "joy", role: .staff, passwordHash: "h"), at: at, audit: nil)
            let first = try await users.recordFailure(org: org, name: "joy", at: at, lockAfter: 3, lockFor: 60)
            #expect(first == LoginThrottle(failures: 1, lastFailureAt: at, lockedUntil: nil), "\(subject.name)")
            _ = try await users.recordFailure(org: org, name: "joy", at: at.addingTimeInterval(1), lockAfter: 3, lockFor: 60)
            let third = try await users.recordFailure(org: org, name: "joy", at: at.addingTimeInterval(2), lockAfter: 3, lockFor: 60)
            #expect(third == LoginThrottle(failures: 3, lastFailureAt: at.addingTimeInterval(2), lockedUntil: at.addingTimeInterval(62)), "\(subject.name)")
            #expect(try await users.user(org: org, name: "joy")?.throttle == third, "\(subject.name)")
            try await users.recordSuccess(org: org, name: "joy")
            #expect(try await users.user(org: org, name: "joy")?.throttle == LoginThrottle(), "\(subject.name)")
            #expect(try await users.recordFailure(org: org, name: "nobody", at: at, lockAfter: 3, lockFor: 60) == LoginThrottle(), "\(subject.name)")
        }
    }

    @Test func enrolmentConfirmsThePendingSecretAndEachStepAndRecoveryCodeWorksOnce() async throws {
        for subject in try await UserDirectorySubject.all() {
            let users = subject.users
            try await users.add(StaffUser(org: org, name: "joy", role: .staff, passwordHash: "h"), at: at, audit: nil)
            // Nothing pending: confirming changes nothing.
            try await users.confirmEnrollment(org: org, name: "joy", counter: 5, recoveryCodeDigests: [digest(1)])
            #expect(try await users.user(org: org, name: "joy")?.secondFactor == SecondFactor(), "\(subject.name)")
            let secret = SealedText(keyID: "k1", bytes: [1, 2, 3])
            try await users.setPendingSecret(org: org, name: "joy", secret: secret)
            #expect(try await users.user(org: org, name: "joy")?.secondFactor == SecondFactor(pendingSecret: secret), "\(subject.name)")
            try await users.confirmEnrollment(org: org, name: "joy", counter: 100, recoveryCodeDigests: [digest(1), digest(2), digest(3)])
            #expect(
                try await users.user(org: org, name: "joy")?.secondFactor
                    == SecondFactor(secret: secret, lastCounter: 100, recoveryCodeDigests: [digest(1), digest(2), digest(3)]), "\(subject.name)")

            #expect(try await users.consumeCounter(org: org, name: "joy", counter: 100) == false, "\(subject.name): the enrolment's step")
            #expect(try await users.consumeCounter(org: org, name: "joy", counter: 99) == false, "\(subject.name)")
            #expect(try await users.consumeCounter(org: org, name: "joy", counter: 101), "\(subject.name)")
            #expect(try await users.consumeCounter(org: org, name: "joy", counter: 101) == false, "\(subject.name): a replay")
            #expect(try await users.consumeCounter(org: org, name: "nobody", counter: 200) == false, "\(subject.name)")

            #expect(try await users.consumeRecoveryCode(org: org, name: "joy", digest: digest(2)), "\(subject.name)")
            #expect(try await users.consumeRecoveryCode(org: org, name: "joy", digest: digest(2)) == false, "\(subject.name)")
            #expect(try await users.consumeRecoveryCode(org: org, name: "joy", digest: digest(9)) == false, "\(subject.name)")
            #expect(try await users.consumeRecoveryCode(org: org, name: "nobody", digest: digest(1)) == false, "\(subject.name)")
            #expect(try await users.user(org: org, name: "joy")?.secondFactor.recoveryCodeDigests == [digest(1), digest(3)], "\(subject.name)")
            #expect(try await users.user(org: org, name: "joy")?.secondFactor.lastCounter == 101, "\(subject.name)")
        }
    }

    @Test func eachAdministrativeChangeIsMadeWithItsAuditEventAndReturnsWhatItReplaced() async throws {
        for subject in try await UserDirectorySubject.all() {
            let users = subject.users
            let secret = SealedText(keyID: "k1", bytes: [4, 5])
            try await users.add(StaffUser(org: org, name: "joy", role: .staff, passwordHash: "h"), at: at, audit: nil)
            try await users.setPendingSecret(org: org, name: "joy", secret: secret)
            try await users.confirmEnrollment(org: org, name: "joy", counter: 7, recoveryCodeDigests: [digest(1)])
            _ = try await users.recordFailure(org: org, name: "joy", at: at, lockAfter: 1, lockFor: 60)

            #expect(try await users.setRole(org: org, name: "joy", role: .admin, audit: event("user.role_changed", "joy")) == .staff, "\(subject.name)")
            #expect(try await users.setRole(org: org, name: "joy", role: .staff, audit: event("user.role_changed", "joy")) == .admin, "\(subject.name)")
            try await users.setDisabled(org: org, name: "joy", disabled: true, audit: event("user.disabled", "joy"))
            #expect(try await users.user(org: org, name: "joy")?.disabled == true, "\(subject.name)")
            try await users.setDisabled(org: org, name: "joy", disabled: false, audit: event("user.enabled", "joy"))
            let displayed = event("user.display_name_changed", "joy", detail: "new=\"Joy Rivera\"")
            #expect(try await users.setDisplayName(org: org, name: "joy", displayName: "Joy Rivera", audit: displayed) == nil, "\(subject.name)")
            #expect(try await users.setDisplayName(org: org, name: "joy", displayName: nil, audit: displayed) == "Joy Rivera", "\(subject.name)")
            try await users.unlock(org: org, name: "joy", audit: event("user.unlocked", "joy"))
            try await users.resetSecondFactor(org: org, name: "joy", audit: event("user.2fa_reset", "joy"))

            let after = try #require(try await users.user(org: org, name: "joy"), "\(subject.name)")
            #expect(after.role == .staff && !after.disabled && after.displayName == nil, "\(subject.name)")
            #expect(after.throttle == LoginThrottle(), "\(subject.name)")
            #expect(after.secondFactor == SecondFactor(), "\(subject.name): the secret, the step and the codes are gone")
            #expect(
                try await subject.audited().map(\.action) == [
                    "user.role_changed", "user.role_changed", "user.disabled", "user.enabled", "user.display_name_changed",
                    "user.display_name_changed", "user.unlocked", "user.2fa_reset",
                ], "\(subject.name)")
            #expect(try await subject.audited()[4] == displayed, "\(subject.name)")
        }
    }

    @Test func anUnknownAccountChangesNothingAndAuditsNothing() async throws {
        for subject in try await UserDirectorySubject.all() {
            let users = subject.users
            let missing = UserDirectorySubject.Failure.userNotFound(org: "clinic", user: "nobody")
            await expect(subject, fails: missing) {
                try await users.setRole(org: org, name: "nobody", role: .admin, audit: event("user.role_changed", "nobody"))
            }
            await expect(subject, fails: missing) {
                try await users.setDisabled(org: org, name: "nobody", disabled: true, audit: event("user.disabled", "nobody"))
            }
            await expect(subject, fails: missing) {
                try await users.setDisplayName(org: org, name: "nobody", displayName: "X", audit: event("user.display_name_changed", "nobody"))
            }
            await expect(subject, fails: missing) {
                try await users.resetSecondFactor(org: org, name: "nobody", audit: event("user.2fa_reset", "nobody"))
            }
            await expect(subject, fails: missing) {
                try await users.unlock(org: org, name: "nobody", audit: event("user.unlocked", "nobody"))
            }
            #expect(try await subject.audited().isEmpty, "\(subject.name)")
            #expect(try await users.list(org: org).isEmpty, "\(subject.name)")
        }
    }

    @Test func withoutTheAuditKeyAChangeThatCarriesAnEventIsNotMade() async throws {
        for subject in try await UserDirectorySubject.all() {
            let users = subject.readOnly
            await expect(subject, fails: .auditKeyMissing) {
                try await users.add(StaffUser(org: org, name: "kim", role: .staff, passwordHash: "h"), at: at, audit: event("user.added", "kim"))
            }
            #expect(try await users.user(org: org, name: "kim") == nil, "\(subject.name)")
            try await users.add(StaffUser(org: org, name: "kim", role: .staff, passwordHash: "h"), at: at, audit: nil)
            await expect(subject, fails: .auditKeyMissing) {
                try await users.setRole(org: org, name: "kim", role: .admin, audit: event("user.role_changed", "kim"))
            }
            #expect(try await users.user(org: org, name: "kim")?.role == .staff, "\(subject.name)")
        }
    }

    @Test func twoNodesUsingOneTOTPStepOrOneRecoveryCodeAtOnceSucceedOnce() async throws {
        // Two pools on one database, as two hub nodes have; each submits the same code twice.
        let fixture = try await PostgresStoreFixture()
        let nodes = [PostgresUserDirectory(database: fixture.database), PostgresUserDirectory(database: try await fixture.node())]
        let secret = SealedText(keyID: "k1", bytes: [1])
        let (org, used) = (org, digest(2))
        for round in 0..<10 {
            let name = "joy\(round)"
            try await nodes[0].add(StaffUser(org: org, name: name, role: .staff, passwordHash: "h"), at: at, audit: nil)
            try await nodes[0].setPendingSecret(org: org, name: name, secret: secret)
            try await nodes[0].confirmEnrollment(org: org, name: name, counter: 10, recoveryCodeDigests: [digest(1), digest(2)])
            let (steps, codes) = try await withThrowingTaskGroup(of: (step: Bool?, code: Bool?).self) { group in
                for attempt in 0..<4 {
                    let node = nodes[attempt % 2]
                    group.addTask { (try await node.consumeCounter(org: org, name: name, counter: 11), nil) }
                    group.addTask { (nil, try await node.consumeRecoveryCode(org: org, name: name, digest: used)) }
                }
                return try await group.reduce(into: ([Bool](), [Bool]())) { results, next in
                    if let step = next.step { results.0.append(step) }
                    if let code = next.code { results.1.append(code) }
                }
            }
            #expect(steps.filter { $0 }.count == 1, "round \(round): step 11 accepted \(steps.filter { $0 }.count) times")
            #expect(codes.filter { $0 }.count == 1, "round \(round): the code accepted \(codes.filter { $0 }.count) times")
            let user = try #require(try await nodes[1].user(org: org, name: name))
            #expect(user.secondFactor.lastCounter == 11 && user.secondFactor.recoveryCodeDigests == [digest(1)], "round \(round)")
        }
    }
}
