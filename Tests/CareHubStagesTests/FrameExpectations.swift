import CareHubCore
import Testing

// Extractors for reply frames: each records an issue at the caller's line and throws when the
// frame is not the one expected, so a test cannot pass by skipping its remaining checks.

/// The room and reconnect token of a `welcome`.
func expectWelcome(_ frame: ServerFrame, sourceLocation: SourceLocation = #_sourceLocation) throws -> (room: ConversationID, token: String) {
    var found: (room: ConversationID, token: String)?
    if case .welcome(_, let room, let token, _, _, _) = frame { found = (room, token) }
    return try #require(found, "expected welcome, got \(frame)", sourceLocation: sourceLocation)
}

/// The history and visitor profile of a `subscribed`.
func expectSubscribed(_ frame: ServerFrame, sourceLocation: SourceLocation = #_sourceLocation) throws -> (history: [HistoryEntry], visitor: VisitorProfile?) {
    var found: (history: [HistoryEntry], visitor: VisitorProfile?)?
    if case .subscribed(_, _, _, let history, let visitor, _, _) = frame { found = (history, visitor) }
    return try #require(found, "expected subscribed, got \(frame)", sourceLocation: sourceLocation)
}

/// The secret and otpauth URI of an `enroll`.
func expectEnroll(_ frame: ServerFrame, sourceLocation: SourceLocation = #_sourceLocation) throws -> (secret: String, uri: String) {
    var found: (secret: String, uri: String)?
    if case .enroll(_, let secret, let uri) = frame { found = (secret, uri) }
    return try #require(found, "expected enroll, got \(frame)", sourceLocation: sourceLocation)
}
