import CareHubCore
import Foundation
import Testing

@Suite struct RoomAccessTests {
    let room = Conversation(id: ConversationID("c_1"), org: OrgID("clinic"), startedAt: Date(timeIntervalSince1970: 0), assignedTo: "joy")

    func settings(_ access: OrgSettings.StaffAccess) -> OrgSettings {
        OrgSettings(id: OrgID("clinic"), displayName: "Clinic", hipaa: true, staffAccess: access)
    }

    @Test func assignedRoomsReachOnlyTheirAssigneeAndAdmins() {
        let assigned = settings(.assigned)
        #expect(assigned.mayRead(room, as: .staff(user: "joy", role: .staff)))
        #expect(!assigned.mayRead(room, as: .staff(user: "sam", role: .staff)))
        #expect(assigned.mayRead(room, as: .staff(user: "boss", role: .admin)))
        var unassigned = room
        unassigned.assignedTo = nil
        #expect(!assigned.mayRead(unassigned, as: .staff(user: "joy", role: .staff)))
    }

    @Test func allStaffReadEveryRoomOfTheirOrganisationOnly() {
        let all = settings(.all)
        #expect(all.mayRead(room, as: .staff(user: "sam", role: .staff)))
        let elsewhere = Conversation(id: ConversationID("c_2"), org: OrgID("other"), startedAt: room.startedAt)
        #expect(!all.mayRead(elsewhere, as: .staff(user: "sam", role: .admin)))
    }

    @Test func aVisitorReadsOnlyItsOwnRoom() {
        let all = settings(.all)
        #expect(all.mayRead(room, as: .visitor(room.id)))
        #expect(!all.mayRead(room, as: .visitor(ConversationID("c_9"))))
    }
}
