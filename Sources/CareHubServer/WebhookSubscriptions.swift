import CareHubCore
import CareHubCrypto
import Foundation

/// Carries out the webhook calls of the HTTP API once the organisation's chain authorised them
/// (the token's `webhooks:write` scope): lists, creates and deletes the calling integration's
/// subscriptions, each change audited (`webhook.created`, `webhook.deleted`; never the secret).
struct WebhookSubscriptions: Sendable {
    let store: any WebhookStore
    let signer: WebhookSigner

    /// The JSON answer to `call` for `caller` (nil: `204 No Content`).
    func answer(_ call: APICall, org: OrgID, caller: Principal, address: String, at now: Date) async throws -> String? {
        guard let integration = caller.integration else { throw PipelineError.forbidden("webhook subscriptions belong to integrations") }
        switch call {
        case .webhooks:
            let mine = try await store.list(org: org).filter { $0.integration == integration }
            var w = JSONWriter()
            w.array("webhooks", mine) { element, webhook in Self.write(webhook, to: &element) }
            return w.finish()
        case .createWebhook(let url, let events):
            let webhook = Webhook(
                id: "wh_" + Hex.encode(SecureRandom.bytes(8)), org: org, integration: integration, url: url, events: events, createdAt: now)
            let created = AuditEvent(
                at: now, org: org, actor: caller.displayName, address: address, action: "webhook.created", target: webhook.id,
                detail: "events=\(events.map(\.rawValue).joined(separator: ","))")
            guard try await store.create(webhook, limit: Webhook.limitPerOrg, recording: [created]) else {
                throw PipelineError(.conflict, "this organisation already has \(Webhook.limitPerOrg) webhook subscriptions; delete one first")
            }
            var w = JSONWriter()
            Self.write(webhook, to: &w)
            w.field("secret", try signer.secret(for: webhook.id))
            return w.finish()
        case .deleteWebhook(let id):
            let deleted = AuditEvent(at: now, org: org, actor: caller.displayName, address: address, action: "webhook.deleted", target: id)
            guard let webhook = try await store.webhook(id, org: org), webhook.integration == integration,
                  try await store.delete(id, org: org, recording: [deleted])
            else { throw PipelineError(.notFound, "no such webhook subscription of this integration") }
            return nil
        default:
            throw PipelineError.internal
        }
    }

    /// `id`, `url`, `events`, `createdAt`.
    static func write(_ webhook: Webhook, to w: inout JSONWriter) {
        w.field("id", webhook.id)
        w.field("url", webhook.url)
        w.strings("events", webhook.events.map(\.rawValue))
        w.field("createdAt", webhook.createdAt.epochMilliseconds)
    }

    /// The body of a create call: `url` (https only) and `events` (one or more, each once).
    static func creation(_ fields: [String: Any]) throws -> APICall {
        guard let url = fields["url"] as? String, url.utf8.count <= 2048, let parsed = WebhookURL(url), parsed.isHTTPS,
              !url.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7f })
        else { throw PipelineError(.invalidField, "field 'url' must be an https://host[:port]/path URL") }
        guard let names = fields["events"] as? [Any], !names.isEmpty, names.count <= WebhookEventKind.allCases.count else {
            throw PipelineError(.invalidField, "field 'events' must list one or more of \(WebhookEventKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var events: [WebhookEventKind] = []
        for name in names {
            guard let text = name as? String, let kind = WebhookEventKind(rawValue: text), !events.contains(kind) else {
                throw PipelineError(.invalidField, "field 'events' must list one or more of \(WebhookEventKind.allCases.map(\.rawValue).joined(separator: ", ")), each once")
            }
            events.append(kind)
        }
        return .createWebhook(url: url, events: events)
    }
}
