import CareHubCore

extension StageEnvironment {
    /// Fills a room not seen since the hub started from its stored history (at most
    /// ``RoomActivityLog/historyDepth`` messages; their bodies are not opened).
    func fillActivity(of conversation: Conversation) async {
        guard !conversation.hasEnded, !activity.knows(conversation.id),
              let history = try? await messages.history(of: conversation.id, limit: RoomActivityLog.historyDepth) else { return }
        activity.record(conversation.id, history)
    }

    /// The room's activity now, filled from its history first if need be.
    func roomActivity(of conversation: Conversation, event: RoomActivity.Event) async -> RoomActivity {
        await fillActivity(of: conversation)
        return activity.activity(of: conversation, event: event)
    }

    /// Tells every live staff connection of `org` that may read the room, subscribed or not,
    /// what just happened in it (`room_activity`). Visitors never receive it. An ended room is
    /// forgotten afterwards.
    func announce(_ conversation: Conversation, event: RoomActivity.Event, org: OrgSettings) async {
        let state = await roomActivity(of: conversation, event: event)
        let staff = liveRecipients(rooms.staffConnections(of: org.id), org: org, room: conversation.id, conversation: conversation, excluding: nil)
        rooms.deliver(.roomActivity(state), to: staff.recipients.map(\.connection))
        if conversation.hasEnded { activity.forget(conversation.id) }
    }
}
