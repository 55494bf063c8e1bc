extension OrgSettings {
    /// Whether `principal` may read and write `conversation` under these settings: the room is
    /// the organisation's, a visitor's own, and under `staff_access = assigned` a staff member's
    /// only while it is assigned to them (admins reach every room; they assign).
    ///
    /// The one rule every path asks: the auth stage before a request, and delivery at the moment
    /// it delivers, so that no change of assignment or settings leaves a reader in a room.
    public func mayRead(_ conversation: Conversation, as principal: Principal) -> Bool {
        guard conversation.org == id, principal.mayAccess(conversation.id) else { return false }
        if staffAccess == .assigned, case .staff(let user, .staff) = principal {
            return conversation.assignedTo == user
        }
        return true
    }
}
