import CareHubAudit
import CareHubCore
import Dispatch
import Foundation
import GRDB
import Synchronization

/// The hub's SQLite database: one file in the data directory, WAL mode, `synchronous=FULL`,
/// `secure_delete` on, and a versioned schema applied by migrations at open.
public final class CareHubDatabase: Sendable {
    /// The database file's path.
    public let path: String
    let pool: DatabasePool
    private let checkpointer: BackgroundCheckpointer?

    /// The file name inside the data directory.
    public static let fileName = "carehub.sqlite"

    /// Opens (creating if needed) the database in `directory` and migrates it to the current schema.
    ///
    /// With `backgroundCheckpoints` (the hub), a connection of its own copies the WAL into the main
    /// file as messages are committed, so that the committing writer (which SQLite has checkpoint
    /// every 1,000 WAL pages) finds almost nothing left to copy and is not stalled for the copy.
    public init(directory: String, backgroundCheckpoints: Bool = false) throws {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if !manager.fileExists(atPath: directory, isDirectory: &isDirectory) {
            do {
                try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw StorageError.unusableDirectory(directory, reason: "\(error.localizedDescription)")
            }
        } else if !isDirectory.boolValue {
            throw StorageError.unusableDirectory(directory, reason: "it is not a directory")
        }
        path = (directory as NSString).appendingPathComponent(Self.fileName)
        // Owner-only from the first byte; SQLite gives the -wal and -shm files the same mode.
        if !manager.fileExists(atPath: path), !manager.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) {
            throw StorageError.unusableDirectory(directory, reason: "cannot create \(Self.fileName)")
        }
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            // Commit means on disk: an acknowledged message survives power loss.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // Deleted rows are overwritten, so purged text is not left in free pages.
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        configuration.busyMode = .timeout(5)
        pool = try DatabasePool(path: path, configuration: configuration)
        // GRDB turns WAL on for the writer after `prepareDatabase` and sets `synchronous=NORMAL`
        // there (no fsync at commit). The writer is the connection that commits: put FULL back.
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        try Self.migrator.migrate(pool)
        checkpointer = backgroundCheckpoints ? try BackgroundCheckpointer(path: path, configuration: configuration) : nil
    }

    /// Tells the background checkpointer (if any) that the WAL grew.
    func committed() {
        checkpointer?.committed()
    }

    /// The schema versions applied so far, oldest first.
    public func appliedMigrations() throws -> [String] {
        try pool.read { db in try Self.migrator.appliedMigrations(db) }
    }

    /// The journal mode in force (`wal`).
    public func journalMode() throws -> String {
        try pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
    }

    /// The `synchronous` level of the connection that commits and of a reading one
    /// (2 is FULL: the WAL is synced at every commit).
    public func synchronousLevels() throws -> (writer: Int, reader: Int) {
        let writer = try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
        let reader = try pool.read { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
        return (writer, reader)
    }

    /// Copies the WAL into the main file and empties it, so that no page image older than the
    /// last commit is left in the log (after a purge or a seal: the plain text lived there).
    /// Readers hold the log for a moment; this retries, and throws when it never got through.
    public func truncateLog(attempts: Int = 100) async throws {
        for attempt in 1...max(1, attempts) {
            do {
                try await pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
                return
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
                if attempt == attempts { throw error }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// Flushes the WAL into the main file and closes the database. When another process (a
    /// running hub, while the CLI is used) is reading or writing, the checkpoint cannot complete
    /// and is left to that process; closing still succeeds.
    /// Commits a write of the health row (`/healthz`): throws if this process cannot commit now.
    public func probeCommit(at now: Date = Date()) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO health (id, checked_at) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET checked_at = excluded.checked_at",
                arguments: [now.timeIntervalSince1970])
        }
    }

    public func close() throws {
        checkpointer?.stop()
        try pool.writeWithoutTransaction { db in
            do {
                _ = try db.checkpoint(.truncate)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
                return
            }
        }
        try pool.close()
    }

    /// The names of the schema versions this build registers, oldest first; a database the hub
    /// has opened has them all in `grdb_migrations`.
    public static var migrationNames: [String] { migrator.migrations }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-conversations-messages-users-outbox") { db in
            try db.execute(sql: """
                CREATE TABLE conversations (
                    id TEXT PRIMARY KEY NOT NULL,
                    org TEXT NOT NULL,
                    token_digest BLOB NOT NULL,
                    started_at REAL NOT NULL,
                    ended_at REAL,
                    last_seq INTEGER NOT NULL DEFAULT 0
                );
                CREATE UNIQUE INDEX conversations_token ON conversations(org, token_digest);
                CREATE INDEX conversations_org_started ON conversations(org, started_at);

                CREATE TABLE messages (
                    conversation TEXT NOT NULL REFERENCES conversations(id),
                    seq INTEGER NOT NULL,
                    sender TEXT NOT NULL,
                    at REAL NOT NULL,
                    key_id TEXT,            -- NULL: body is plain UTF-8 text; else: sealed under this key
                    body BLOB NOT NULL,
                    PRIMARY KEY (conversation, seq)
                ) WITHOUT ROWID;

                CREATE TABLE users (
                    org TEXT NOT NULL,
                    name TEXT NOT NULL,
                    role TEXT NOT NULL CHECK (role IN ('staff', 'admin')),
                    password_hash TEXT NOT NULL,
                    disabled INTEGER NOT NULL DEFAULT 0,
                    created_at REAL NOT NULL,
                    PRIMARY KEY (org, name)
                );

                CREATE TABLE outbox (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    org TEXT NOT NULL,
                    conversation TEXT NOT NULL,
                    text TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    sent_at REAL
                );
                """)
        }
        migrator.registerMigration("v2-second-factor-lockout-audit") { db in
            try db.execute(sql: """
                ALTER TABLE users ADD COLUMN totp_key_id TEXT;          -- key the secret is sealed under
                ALTER TABLE users ADD COLUMN totp_secret BLOB;          -- sealed TOTP secret, NULL until enrolled
                ALTER TABLE users ADD COLUMN totp_pending_key_id TEXT;
                ALTER TABLE users ADD COLUMN totp_pending BLOB;         -- sealed secret handed out, not yet confirmed
                ALTER TABLE users ADD COLUMN totp_last_counter INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE users ADD COLUMN recovery_codes BLOB NOT NULL DEFAULT x'';  -- 32-byte SHA-256 digests, concatenated
                ALTER TABLE users ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE users ADD COLUMN last_failure_at REAL;
                ALTER TABLE users ADD COLUMN locked_until REAL;

                CREATE TABLE audit_events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at REAL NOT NULL,
                    org TEXT NOT NULL,
                    actor TEXT NOT NULL,
                    address TEXT NOT NULL,
                    action TEXT NOT NULL,
                    target TEXT NOT NULL,
                    detail TEXT NOT NULL
                );
                CREATE INDEX audit_events_org_at ON audit_events(org, at);
                """)
        }
        migrator.registerMigration("v3-envelope-keys-audit-chain") { db in
            try db.execute(sql: """
                -- Per-organisation key-encryption keys: random, stored wrapped under the master key.
                -- A retired version's wrapped bytes are erased once no data key uses it.
                CREATE TABLE org_keks (
                    org TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('active', 'rotating', 'retired')),
                    wrapped BLOB,
                    created_at REAL NOT NULL,
                    retired_at REAL,
                    PRIMARY KEY (org, version)
                );
                -- Per-scope data keys (a conversation, an account's secrets), wrapped under a KEK version.
                CREATE TABLE data_keys (
                    scope TEXT PRIMARY KEY NOT NULL,
                    org TEXT NOT NULL,
                    kek_version INTEGER NOT NULL,
                    wrapped BLOB NOT NULL,
                    created_at REAL NOT NULL
                );
                CREATE INDEX data_keys_org_version ON data_keys(org, kek_version);

                -- The audit trail becomes a hash chain with HMAC-signed checkpoints.
                ALTER TABLE audit_events ADD COLUMN hash BLOB;
                CREATE TABLE audit_checkpoints (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    last_event_id INTEGER NOT NULL,
                    hash BLOB NOT NULL,
                    mac BLOB NOT NULL,
                    at REAL NOT NULL
                );
                """)
            // Times become integer milliseconds (the chain hashes them exactly); chain the rows
            // written before this version.
            try db.execute(sql: "UPDATE audit_events SET at = CAST(ROUND(at * 1000) AS INTEGER)")
            var previous = AuditChain.genesis
            for row in try Row.fetchAll(db, sql: "SELECT * FROM audit_events ORDER BY id") {
                let hash = AuditChain.hash(previous: previous, row: row)
                try db.execute(sql: "UPDATE audit_events SET hash = ? WHERE id = ?", arguments: [Data(hash), row["id"] as Int64])
                previous = hash
            }
        }
        migrator.registerMigration("v4-visitor-profile") { db in
            try db.execute(sql: """
                ALTER TABLE conversations ADD COLUMN profile_key_id TEXT;  -- NULL: plain JSON; else sealed
                ALTER TABLE conversations ADD COLUMN profile BLOB;         -- the pre-chat form
                ALTER TABLE conversations ADD COLUMN purged_at REAL;       -- the transcript was deleted
                """)
        }
        migrator.registerMigration("v5-end-of-chat-hook-outbox-assignment") { db in
            try db.execute(sql: """
                -- The end-of-chat hook: export, then purge; retried with back-off while the export fails.
                ALTER TABLE conversations ADD COLUMN purge_attempts INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE conversations ADD COLUMN purge_next_at REAL;      -- next attempt, when pending
                ALTER TABLE conversations ADD COLUMN purge_error TEXT;        -- why the last attempt failed (no content)
                ALTER TABLE conversations ADD COLUMN transcript_to TEXT;      -- non-HIPAA: the visitor's address for a copy
                ALTER TABLE conversations ADD COLUMN assigned_to TEXT;        -- staff_access = assigned
                CREATE INDEX conversations_org_open ON conversations(org, purged_at, ended_at);

                -- One row per notification and integration. The text is rendered when dispatched,
                -- under the settings in force then; `preview` exists only for non-HIPAA orgs with
                -- notify=preview and is cleared once sent. The v1 table had no destinations.
                DROP TABLE outbox;
                CREATE TABLE outbox (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    org TEXT NOT NULL,
                    integration TEXT NOT NULL,
                    conversation TEXT NOT NULL,
                    unread INTEGER NOT NULL,
                    preview TEXT,
                    sender TEXT,
                    created_at REAL NOT NULL,
                    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'refused', 'failed')),
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_at REAL NOT NULL,
                    last_error TEXT,
                    done_at REAL
                );
                CREATE INDEX outbox_due ON outbox(state, next_at);
                """)
        }
        migrator.registerMigration("v6-baa-attestations") { db in
            try db.execute(sql: """
                -- What an admin attested to when switching an organisation into HIPAA mode. Kept, never updated.
                CREATE TABLE baa_attestations (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    org TEXT NOT NULL,
                    signed_on TEXT NOT NULL,        -- YYYY-MM-DD
                    officer_name TEXT NOT NULL,
                    officer_email TEXT NOT NULL,
                    recorded_by TEXT NOT NULL,
                    recorded_at REAL NOT NULL
                );
                CREATE INDEX baa_attestations_org ON baa_attestations(org, id);
                """)
        }
        migrator.registerMigration("v7-keyed-audit-chain-signed-heads") { db in
            try db.execute(sql: """
                -- From here on each audit row's hash is an HMAC under a key derived from the audit
                -- key, and every commit of audit rows stores a signed head. Rows before keyed_from
                -- keep the unkeyed hash and the checkpoints of older versions.
                CREATE TABLE audit_heads (
                    seq INTEGER PRIMARY KEY NOT NULL,   -- the last event covered
                    hash BLOB NOT NULL,                 -- its chain value
                    keyed_from INTEGER NOT NULL,        -- the first event of the keyed chain
                    at INTEGER NOT NULL,                -- when signed, ms since the epoch
                    mac BLOB NOT NULL                   -- HMAC-SHA256 under the audit key
                );
                """)
        }
        migrator.registerMigration("v8-staff-display-name") { db in
            // The name patients see on a staff member's replies; NULL shows the login name.
            try db.execute(sql: "ALTER TABLE users ADD COLUMN display_name TEXT")
        }
        migrator.registerMigration("v9-canned-replies") { db in
            try db.execute(sql: """
                -- Organisation-wide answers staff insert before sending. Written by admins, not
                -- patients: no PHI, stored plain.
                CREATE TABLE canned_replies (
                    org TEXT NOT NULL,
                    name TEXT NOT NULL,
                    text TEXT NOT NULL,
                    updated_at REAL NOT NULL,
                    updated_by TEXT NOT NULL,           -- the admin's login
                    PRIMARY KEY (org, name)
                );
                """)
        }
        migrator.registerMigration("v10-front-desk") { db in
            try db.execute(sql: """
                ALTER TABLE conversations ADD COLUMN offline INTEGER NOT NULL DEFAULT 0;  -- left while closed or nobody was available
                ALTER TABLE conversations ADD COLUMN read_seq INTEGER NOT NULL DEFAULT 0; -- read receipt: highest seq staff have seen
                ALTER TABLE conversations ADD COLUMN handoff_from TEXT;                   -- latest hand-over between staff
                ALTER TABLE conversations ADD COLUMN handoff_to TEXT;                     -- NULL: back to the queue
                ALTER TABLE conversations ADD COLUMN handoff_at REAL;
                ALTER TABLE conversations ADD COLUMN handoff_key_id TEXT;                 -- NULL: plain note; else sealed
                ALTER TABLE conversations ADD COLUMN handoff_note BLOB;                   -- the note for the colleague (ePHI)
                """)
        }
        migrator.registerMigration("v11-change-journal") { db in
            try db.execute(sql: """
                -- Changes other hub processes must act on (ChangeJournal): names and ids only.
                -- AUTOINCREMENT: ids never go back after old rows are forgotten.
                CREATE TABLE changes (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at REAL NOT NULL,
                    org TEXT NOT NULL,
                    origin TEXT NOT NULL,               -- the process that made the change
                    kind TEXT NOT NULL,                 -- sessions_revoked | assigned
                    user TEXT,                          -- the account revoked, or the new assignee
                    room TEXT,
                    previous TEXT,                      -- the previous assignee
                    reason TEXT                         -- why the sessions end
                );
                CREATE INDEX changes_at ON changes (at);
                """)
        }
        migrator.registerMigration("v12-attachments") { db in
            try db.execute(sql: """
                -- Files sent in a conversation (AttachmentStore). The name is ePHI and stored as
                -- message bodies are; the bytes are kept in chunks of 64 KiB, each sealed on its own
                -- in a HIPAA organisation. Erased with the conversation (secure_delete, WAL truncated).
                CREATE TABLE attachments (
                    id TEXT PRIMARY KEY NOT NULL,       -- a_ + 32 hex digits
                    org TEXT NOT NULL,
                    conversation TEXT NOT NULL REFERENCES conversations(id),
                    sender TEXT NOT NULL,
                    name_key_id TEXT,                   -- NULL: name is plain UTF-8 text; else sealed under this key
                    name BLOB NOT NULL,
                    content_type TEXT NOT NULL,         -- sniffed from the bytes
                    size INTEGER NOT NULL DEFAULT 0,    -- 0 while receiving
                    state TEXT NOT NULL CHECK (state IN ('receiving', 'held', 'ready')),
                    at REAL NOT NULL,                   -- when the upload began
                    seq INTEGER                         -- the message that carries it, once finished
                );
                CREATE INDEX attachments_conversation ON attachments(conversation, at);
                CREATE INDEX attachments_org_state ON attachments(org, state, at);   -- held(org:)
                CREATE INDEX attachments_state ON attachments(state, at);            -- abandoned(before:)

                CREATE TABLE attachment_chunks (
                    attachment TEXT NOT NULL REFERENCES attachments(id),
                    idx INTEGER NOT NULL,               -- 0, 1, 2, … in order
                    key_id TEXT,                        -- NULL: plain bytes; else sealed under this key
                    bytes BLOB NOT NULL,
                    PRIMARY KEY (attachment, idx)
                );

                -- The attachment a message carries (its text is then empty).
                ALTER TABLE messages ADD COLUMN attachment TEXT;
                """)
        }
        migrator.registerMigration("v13-api-tokens") { db in
            try db.execute(sql: """
                -- Integration tokens (APITokenStore): the digest of the secret, never the secret.
                CREATE TABLE api_tokens (
                    id TEXT PRIMARY KEY NOT NULL,       -- tok_ + 16 hex digits
                    org TEXT NOT NULL,
                    integration TEXT NOT NULL,          -- an `integration NAME type=api` of the organisation
                    scopes TEXT NOT NULL,               -- comma-separated, e.g. org:read,messages:read
                    allow_from TEXT NOT NULL,           -- comma-separated CIDR blocks; empty: anywhere
                    digest BLOB NOT NULL,               -- SHA-256 of the secret
                    created_by TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    expires_at REAL NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('awaiting_approval', 'active', 'revoked')),
                    decided_by TEXT,                    -- who approved or revoked it
                    decided_at REAL
                );
                CREATE INDEX api_tokens_org ON api_tokens(org, created_at);
                """)
        }
        migrator.registerMigration("v14-webhooks") { db in
            try db.execute(sql: """
                -- Webhook subscriptions (WebhookStore). No secret: the hub derives it from the id.
                CREATE TABLE webhooks (
                    id TEXT PRIMARY KEY NOT NULL,       -- wh_ + 16 hex digits
                    org TEXT NOT NULL,
                    integration TEXT NOT NULL,          -- the `integration NAME type=api` whose token made it
                    url TEXT NOT NULL,                  -- https:// only
                    events TEXT NOT NULL,               -- comma-separated, e.g. conversation.opened,message.created
                    created_at REAL NOT NULL
                );
                CREATE INDEX webhooks_org ON webhooks(org, created_at);

                -- Webhook events waiting to go out (WebhookOutbox): ids and times only, never content.
                CREATE TABLE webhook_deliveries (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    webhook TEXT NOT NULL,
                    org TEXT NOT NULL,
                    body TEXT NOT NULL,                 -- the event's JSON, as signed and sent
                    created_at REAL NOT NULL,
                    next_at REAL NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'refused', 'failed')),
                    last_error TEXT,
                    done_at REAL
                );
                CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, next_at);
                """)
        }
        migrator.registerMigration("v15-health") { db in
            try db.execute(sql: """
                -- One row the health check writes, so /healthz tells that this node can commit.
                CREATE TABLE health (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    checked_at REAL NOT NULL
                );
                """)
        }
        return migrator
    }
}

extension CareHubDatabase {
    /// Runs raw SQL in a write transaction. For maintenance and tests; the hub itself never
    /// touches rows this way.
    public func rawWrite(_ sql: String) throws {
        try pool.write { db in try db.execute(sql: sql) }
    }

    /// The first column of the first row of a query, as an integer. For maintenance and tests.
    public func rawRead(_ sql: String) throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: sql) ?? 0 }
    }
}

/// Copies new WAL frames into the main database file from a connection of its own, without
/// waiting for readers or writers (a passive checkpoint): 10 ms after the message writer commits,
/// and every 10 ms while it keeps committing; idle otherwise.
private final class BackgroundCheckpointer: Sendable {
    private struct State {
        var scheduled = false
        var committed = false
        var stopped = false
    }
    private let connection: DatabaseQueue
    private let queue = DispatchQueue(label: "carehub.storage.checkpoint")
    private let state = Mutex(State())

    init(path: String, configuration: Configuration) throws {
        connection = try DatabaseQueue(path: path, configuration: configuration)
    }

    /// Called after a commit: a pass runs within 10 ms.
    func committed() {
        let start = state.withLock { state -> Bool in
            state.committed = true
            guard !state.scheduled && !state.stopped else { return false }
            state.scheduled = true
            return true
        }
        if start { schedule() }
    }

    private func schedule() {
        queue.asyncAfter(deadline: .now() + .milliseconds(10)) { [self] in
            let run = state.withLock { state -> Bool in
                state.committed = false
                if state.stopped { state.scheduled = false }
                return !state.stopped
            }
            guard run else { return }
            // Busy: the writer's own checkpoint, or a purge's truncating one, is running; next time.
            _ = try? connection.writeWithoutTransaction { db in try db.checkpoint(.passive) }
            let again = state.withLock { state -> Bool in
                if state.committed && !state.stopped { return true }
                state.scheduled = false
                return false
            }
            if again { schedule() }
        }
    }

    /// Stops, after a checkpoint in progress finishes.
    func stop() {
        state.withLock { $0.stopped = true }
        queue.sync {}
        try? connection.close()
    }
}

extension CareHubDatabase {
    /// The first column of the first row of a query, as bytes. For maintenance and tests.
    public func rawReadBlob(_ sql: String) throws -> [UInt8]? {
        try pool.read { db in try Data.fetchOne(db, sql: sql).map(Array.init) }
    }
}
