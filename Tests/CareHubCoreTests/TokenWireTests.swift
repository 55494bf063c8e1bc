@testable import CareHubCore
import Foundation
import Testing

@Suite("integration tokens on the admin wire")
struct TokenWireTests {
    func frame(_ text: String) throws -> ClientFrame {
        try Envelope.decode(Array(text.utf8)).get().frame
    }

    func failure(_ text: String) -> PipelineError? {
        guard case .failure(let failure) = Envelope.decode(Array(text.utf8)) else { return nil }
        return failure.error
    }

    @Test func theFourTokenOpsDecode() throws {
        #expect(try frame(#"{"type":"admin","op":"tokens.list","id":"l"}"#) == .admin(.tokens))
        #expect(try frame(#"{"type":"admin","op":"tokens.create","integration":"ehr","scopes":["queue:read","org:read"]}"#)
            == .admin(.createToken(integration: "ehr", scopes: [.orgRead, .queueRead], expiresDays: 90, allowFrom: [])))
        #expect(try frame(#"{"type":"admin","op":"tokens.create","integration":"ehr","scopes":["messages:read"],"expiresDays":7,"allowFrom":["10.0.0.0/8","2001:db8::/32"]}"#)
            == .admin(.createToken(
                integration: "ehr", scopes: [.messagesRead], expiresDays: 7, allowFrom: [CIDRBlock("10.0.0.0/8")!, CIDRBlock("2001:db8::/32")!])))
        #expect(try frame(#"{"type":"admin","op":"tokens.approve","token":"tok_0123456789abcdef","totp":" 123 456 ","id":"a"}"#)
            == .admin(.approveToken(id: APITokenID("tok_0123456789abcdef"), totp: "123456")))
        #expect(try frame(#"{"type":"admin","op":"tokens.approve","token":"tok_0123456789abcdef"}"#)
            == .admin(.approveToken(id: APITokenID("tok_0123456789abcdef"), totp: nil)))
        #expect(try frame(#"{"type":"admin","op":"tokens.revoke","token":"tok_0123456789abcdef"}"#)
            == .admin(.revokeToken(id: APITokenID("tok_0123456789abcdef"))))
        #expect(AdminRequest.tokens.op.rawValue == "tokens.list")
        #expect(AdminRequest.createToken(integration: "a", scopes: [.orgRead], expiresDays: 1, allowFrom: []).op.rawValue == "tokens.create")
        #expect(AdminRequest.approveToken(id: APITokenID("tok_0123456789abcdef"), totp: nil).op.rawValue == "tokens.approve")
        #expect(AdminRequest.revokeToken(id: APITokenID("tok_0123456789abcdef")).op.rawValue == "tokens.revoke")
    }

    @Test func theCorrelationIDStaysTheFramesWhileFieldTokenNamesTheToken() throws {
        let envelope = try Envelope.decode(Array(#"{"type":"admin","op":"tokens.revoke","token":"tok_0123456789abcdef","id":"r7"}"#.utf8)).get()
        #expect(envelope.id == "r7")
        #expect(envelope.frame == .admin(.revokeToken(id: APITokenID("tok_0123456789abcdef"))))
    }

    @Test func badTokenFieldsAreRefusedWithTheFieldNamed() {
        let create = #"{"type":"admin","op":"tokens.create","integration":"ehr""#
        #expect(failure(create + "}")?.message.hasPrefix("field 'scopes' must list some of org:read") == true)
        #expect(failure(create + #","scopes":[]}"#)?.message.hasPrefix("field 'scopes' must list") == true)
        #expect(failure(create + #","scopes":["org:write"]}"#)?.code == .invalidField)
        #expect(failure(create + #","scopes":["org:read","org:read"]}"#)?.message.hasPrefix("field 'scopes' must list") == true)
        #expect(failure(create + #","scopes":["org:read,queue:read"]}"#)?.message.hasPrefix("field 'scopes' must list") == true)
        #expect(failure(create + #","scopes":"org:read"}"#)?.message == "field 'scopes' must be an array of strings")
        #expect(failure(create + #","scopes":[1]}"#)?.message == "field 'scopes' must be an array of strings")
        #expect(failure(create + #","scopes":["org:read"],"expiresDays":0}"#)?.message == "field 'expiresDays' must be a whole number from 1 to 365")
        #expect(failure(create + #","scopes":["org:read"],"expiresDays":366}"#)?.message == "field 'expiresDays' must be a whole number from 1 to 365")
        #expect(failure(create + #","scopes":["org:read"],"expiresDays":1.5}"#)?.message == "field 'expiresDays' must be a whole number")
        #expect(failure(create + #","scopes":["org:read"],"allowFrom":["10.0.0.0/33"]}"#)?.message
            == "field 'allowFrom' must list CIDR blocks such as 10.0.0.0/8 or 2001:db8::/32")
        #expect(failure(#"{"type":"admin","op":"tokens.create","scopes":["org:read"]}"#)?.message == "field 'integration' is required")
        #expect(failure(#"{"type":"admin","op":"tokens.approve"}"#)?.message == "field 'token' is required")
        #expect(failure(#"{"type":"admin","op":"tokens.revoke","token":"tok_XYZ"}"#)?.message == "field 'token' must be a token id: tok_ and 16 hex digits")
        #expect(failure(#"{"type":"admin","op":"tokens.approve","token":"tok_0123456789abcdef","totp":7}"#)?.message == "field 'totp' must be a string")
    }
}
