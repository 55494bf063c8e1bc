import ArgumentParser
import CareHubCore
import CareHubServer
import CareHubStorage
import Foundation

struct ConversationsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conversations",
        abstract: "List conversations and their end-of-chat state, or assign one to a staff member.",
        discussion: """
            With --pending-purge: ended conversations whose export and purge have not completed, with \
            the number of failed attempts, the next attempt and the last error (exit status 0 either way; \
            the same count is the carehub_purge_pending metric). Lines hold ids and states, never content.
            """,
        subcommands: [List.self, Assign.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an organisation's recent conversations, or those pending purge.")
        @Option(help: "The data directory.")
        var data = "./data"
        @Option(help: "The organisation (required unless --pending-purge).")
        var org: String?
        @Flag(help: "Only ended conversations whose export and purge have not completed.")
        var pendingPurge = false
        @Flag(help: "One JSON object per line.")
        var json = false

        func validate() throws {
            if !pendingPurge && org == nil { throw ValidationError("--org is required (or use --pending-purge)") }
        }

        func run() async throws {
            let formatter = ISO8601DateFormatter()
            try await Output.withDatabase(data) { database in
                let store = SQLiteConversationStore(database: database)
                if pendingPurge {
                    let pending = try store.pendingPurges(org: org.map(OrgID.init))
                    if !json { Output.line(pending.isEmpty ? "no conversation is pending purge" : "\(pending.count) conversation(s) pending purge:") }
                    for item in pending {
                        let conversation = item.conversation
                        if json {
                            var w = JSONWriter()
                            w.field("conversation", conversation.id.rawValue)
                            w.field("org", conversation.org.rawValue)
                            if let ended = conversation.endedAt { w.field("endedAt", ended.epochMilliseconds) }
                            w.field("attempts", Int64(conversation.purgeAttempts))
                            if let next = item.nextAttempt { w.field("nextAttempt", next.epochMilliseconds) } else { w.null("nextAttempt") }
                            w.optionalField("lastError", item.lastError)
                            Output.line(w.finish())
                        } else {
                            let ended = conversation.endedAt.map(formatter.string(from:)) ?? "-"
                            let next = item.nextAttempt.map(formatter.string(from:)) ?? "now"
                            Output.line("\(conversation.id)  \(conversation.org)  ended \(ended)  attempts \(conversation.purgeAttempts)  next \(next)  \(item.lastError ?? "")")
                        }
                    }
                } else if let org {
                    for conversation in try store.recent(org: OrgID(org), limit: 200) {
                        let state = conversation.isPurged ? "purged" : conversation.conversation.hasEnded ? "ended" : "open"
                        if json {
                            var w = JSONWriter()
                            w.field("conversation", conversation.conversation.id.rawValue)
                            w.field("startedAt", conversation.conversation.startedAt.epochMilliseconds)
                            w.field("state", state)
                            w.optionalField("assignedTo", conversation.conversation.assignedTo)
                            Output.line(w.finish())
                        } else {
                            Output.line("\(conversation.conversation.id)  started \(formatter.string(from: conversation.conversation.startedAt))  \(state)  \(conversation.conversation.assignedTo.map { "assigned to \($0)" } ?? "")")
                        }
                    }
                }
            }
        }
    }

    struct Assign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Assign a conversation to a staff member (for staff_access = assigned); audited.",
            discussion: """
                A running hub applies the assignment within a second: staff who may no longer read the room leave it, \
                and the new assignee's consoles are told.
                """)
        @Option(help: "The data directory.")
        var data = "./data"
        @Option(help: "The organisation.")
        var org: String
        @Argument(help: "The conversation id (c_…).")
        var conversation: String
        @Argument(help: "The staff user name.")
        var user: String

        func run() async throws {
            try await Output.withDatabase(data) { database in
                // The `assign` frame's checks, audit event and journal entry, from which a running
                // hub drops the readers who lost the room and tells the new assignee.
                let assignments = Assignments(
                    conversations: SQLiteConversationStore(database: database), users: SQLiteUserDirectory(database: database),
                    audit: try Operator.auditLog(database, dataDirectory: data), journal: SQLiteChangeJournal(database: database),
                    origin: Operator.origin)
                let (_, after) = try await assignments.assign(
                    ConversationID(conversation), in: OrgID(org), to: user, by: Operator.actor, address: "local", at: Date())
                Output.line("\(conversation) assigned to \(after.assignedTo ?? user)")
            }
        }
    }
}
