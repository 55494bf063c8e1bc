import Foundation

/// A change made to shared state that other hub processes on the same database must act on:
/// `carehub user …` and `carehub conversations assign` write one, and a running hub applies it
/// within a second (ends the sessions it revokes, drops the readers an assignment takes a room
/// from, tells the new assignee). Changes hold names and ids, never message text.
public struct Change: Sendable, Hashable {
    /// What changed.
    public enum Kind: Sendable, Hashable {
        /// The account's live sessions end (`reason` as in `session.revoked`: `disabled`,
        /// `role_changed`, `2fa_reset`).
        case sessionsRevoked(user: String, reason: String)
        /// The conversation is now assigned to `user` (nil: to nobody), and was to `previous`.
        case assigned(room: ConversationID, user: String?, previous: String?)
    }

    /// Increasing in the order changes were recorded (0 until recorded).
    public let id: Int64
    public let org: OrgID
    public let kind: Kind
    /// The process that made the change: a hub skips its own, which it applied as it made them.
    public let origin: String

    public init(id: Int64 = 0, org: OrgID, kind: Kind, origin: String) {
        self.id = id
        self.org = org
        self.kind = kind
        self.origin = origin
    }
}

/// The journal of ``Change``s that hub processes follow. Entries are kept for a while and then
/// forgotten: a hub that starts reads the state itself, and follows from the newest entry on.
public protocol ChangeJournal: Sendable {
    /// Appends a change; returns it with its id.
    @discardableResult
    func record(_ change: Change, at: Date) async throws -> Change
    /// The id of the newest change, 0 if none.
    func newest() async throws -> Int64
    /// Changes after `id`, oldest first, at most `limit`.
    func changes(after id: Int64, limit: Int) async throws -> [Change]
    /// Forgets the changes recorded before `date`; returns how many.
    @discardableResult
    func forget(before date: Date) async throws -> Int
}
