import CareHubCore
import Foundation
import Testing

@Suite("state of one process")
struct NodeLocalStateTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aVisitorIsAbandonedAfterBeingGoneLongEnoughAndOneOrgsCheckKeepsAnothersClocks() {
        let tracker = EndOfChatTracker()
        let a = ConversationID("c_a"), b = ConversationID("c_b"), other = ConversationID("c_other")
        #expect(tracker.abandoned(org: OrgID("one"), open: [a, b], present: [b], after: 60, at: start).isEmpty)
        #expect(tracker.abandoned(org: OrgID("two"), open: [other], present: [], after: 60, at: start).isEmpty)
        // b leaves later: its clock starts then.
        #expect(tracker.abandoned(org: OrgID("one"), open: [a, b], present: [], after: 60, at: start.addingTimeInterval(30)).isEmpty)
        #expect(tracker.abandoned(org: OrgID("one"), open: [a, b], present: [], after: 60, at: start.addingTimeInterval(60)) == [a])
        #expect(tracker.abandoned(org: OrgID("two"), open: [other], present: [], after: 60, at: start.addingTimeInterval(60)) == [other])
        // A visitor who comes back stops the clock; leaving again starts it afresh.
        #expect(tracker.abandoned(org: OrgID("one"), open: [b], present: [b], after: 60, at: start.addingTimeInterval(80)).isEmpty)
        #expect(tracker.abandoned(org: OrgID("one"), open: [b], present: [], after: 60, at: start.addingTimeInterval(100)).isEmpty)
        tracker.restartAbsence(of: b, org: OrgID("one"), at: start.addingTimeInterval(150))
        #expect(tracker.abandoned(org: OrgID("one"), open: [b], present: [], after: 60, at: start.addingTimeInterval(200)).isEmpty)
        #expect(tracker.abandoned(org: OrgID("one"), open: [b], present: [], after: 60, at: start.addingTimeInterval(210)) == [b])
    }

    @Test func oneExportOfAConversationAtATime() {
        let tracker = EndOfChatTracker()
        #expect(tracker.beginExport(ConversationID("c_1")))
        #expect(!tracker.beginExport(ConversationID("c_1")))
        #expect(tracker.beginExport(ConversationID("c_2")))
        tracker.endExport(ConversationID("c_1"))
        #expect(tracker.beginExport(ConversationID("c_1")))
    }
}
