"""Webhook subscriptions against the real hub and a real HTTPS receiver that trusts nothing but
its own test certificate (the hub trusts it through the integration's `ca=`): an integration
subscribes, a visitor chats in the HIPAA organisation, and the receiver gets the conversation's
events, each signed with the subscription's secret and carrying ids only; http:// is refused,
a deleted subscription receives nothing more, and a token without webhooks:write opens nothing."""

import asyncio
import hashlib
import hmac
import http.server
import json
import sqlite3
import ssl
import subprocess
import threading
import time

from api_client import RIVERSIDE, RIVERSIDE_NAME, call, declare, make_token, org_path
from conftest import TIMEOUT, Hub, carehub, visitor

CANARY = "WEBHOOK-CANARY-7f3a knee pain since Tuesday"
EVENTS = ["conversation.opened", "conversation.ended", "message.created"]


class SigningReceiver:
    """An HTTPS server with a self-signed certificate made for the test; records each POST's
    path, headers and body, and answers 200."""

    def __init__(self, directory):
        self.cert = directory / "hooks.pem"
        key = directory / "hooks.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(self.cert)],
            check=True, capture_output=True)
        self.posts = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                receiver.posts.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert), str(key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return f"https://127.0.0.1:{self.port}{path}"

    def events(self, path):
        return [(headers, body) for p, headers, body in list(self.posts) if p == path]

    def wait_for(self, path, wanted):
        """The posts to `path` once every (event, conversation) in `wanted` arrived."""
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            posts = self.events(path)
            seen = {(json.loads(body)["event"], json.loads(body)["conversation"]) for _, body in posts}
            if wanted <= seen:
                return posts
            time.sleep(0.2)
        raise AssertionError(f"{wanted} not all POSTed to {path} within {TIMEOUT}s; got {self.posts}")

    def close(self):
        self.server.shutdown()


def signed_by(secret, headers, body, webhook_id):
    expected = hmac.new(secret.encode(), f"{headers['carehub-timestamp']}.{body}".encode(), hashlib.sha256).hexdigest()
    return headers["carehub-webhook-id"] == webhook_id and hmac.compare_digest(headers["carehub-signature"], "sha256=" + expected)


async def chat(hub, token):
    """A visitor chat with the canary text, ended through the API; the room and the message's seq."""
    patient, welcome = await visitor(hub, RIVERSIDE)
    room = welcome["conversation"]
    ack = await patient.request({"type": "send", "room": room, "text": CANARY, "id": "m"}, "ack")
    assert ack["type"] == "ack", ack
    await patient.close()
    ended = call(hub, "POST", org_path(RIVERSIDE, f"/conversations/{room}/end"), token)
    assert ended.status == 200, ended
    return room, ack["seq"]


def test_a_subscription_receives_signed_id_only_events_until_deleted(workdir):
    receiver = SigningReceiver(workdir)
    declare(workdir, RIVERSIDE_NAME, f"integration ehr type=api baa=yes ca={receiver.cert}")
    _, token = make_token(workdir, RIVERSIDE, "ehr", ["webhooks:write", "conversations:write"])
    _, reader = make_token(workdir, RIVERSIDE, "ehr", ["conversations:write"])
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        hooks = org_path(RIVERSIDE, "/webhooks")
        # Only https://, only the events there are, and only with the scope.
        plain = call(hub, "POST", hooks, token, {"url": f"http://127.0.0.1:{receiver.port}/a", "events": EVENTS})
        assert plain.status == 400 and plain.code == "invalid_field" and "https" in plain.json["detail"], plain
        unknown = call(hub, "POST", hooks, token, {"url": receiver.url("/a"), "events": ["message.read"]})
        assert unknown.status == 400 and unknown.code == "invalid_field", unknown
        for method, path, body in [("GET", hooks, None), ("POST", hooks, {"url": receiver.url("/a"), "events": EVENTS}),
                                   ("DELETE", hooks + "/wh_0123456789abcdef", None)]:
            refused = call(hub, method, path, reader, body)
            assert refused.status == 403 and refused.code == "forbidden" and "webhooks:write" in refused.json["detail"], refused

        made = {}
        for path in ("/a", "/b"):
            created = call(hub, "POST", hooks, token, {"url": receiver.url(path), "events": EVENTS})
            assert created.status == 201, created
            assert created.json["url"] == receiver.url(path) and created.json["events"] == EVENTS
            assert created.json["id"].startswith("wh_") and created.json["secret"].startswith("whsec_")
            made[path] = created.json
        listed = call(hub, "GET", hooks, token)
        assert listed.status == 200 and [w["id"] for w in listed.json["webhooks"]] == [made["/a"]["id"], made["/b"]["id"]], listed
        assert all("secret" not in w for w in listed.json["webhooks"]), listed  # shown once

        room, seq = asyncio.run(chat(hub, token))
        wanted = {(event, room) for event in EVENTS}
        for path in ("/a", "/b"):
            posts = receiver.wait_for(path, wanted)
            for headers, body in posts:
                assert signed_by(made[path]["secret"], headers, body, made[path]["id"]), (headers, body)
                # Not the other subscription's secret: each is its own.
                assert not signed_by(made["/b" if path == "/a" else "/a"]["secret"], headers, body, made[path]["id"])
                payload = json.loads(body)
                assert payload["org"] == RIVERSIDE and payload["conversation"] == room and isinstance(payload["at"], int)
                assert set(payload) <= {"event", "org", "conversation", "seq", "at"}, payload
            created = [json.loads(body) for _, body in posts if json.loads(body)["event"] == "message.created"]
            assert [m["seq"] for m in created] == [seq]
        # The canary is in no payload and no header.
        for _, headers, body in receiver.posts:
            assert CANARY not in body and "knee" not in body
            assert all(CANARY not in value for value in headers.values())

        deleted = call(hub, "DELETE", f"{hooks}/{made['/a']['id']}", token)
        assert deleted.status == 204 and deleted.body == b"", deleted
        again = call(hub, "DELETE", f"{hooks}/{made['/a']['id']}", token)
        assert again.status == 404 and again.code == "not_found", again
        assert [w["id"] for w in call(hub, "GET", hooks, token).json["webhooks"]] == [made["/b"]["id"]]

        second, _ = asyncio.run(chat(hub, token))
        receiver.wait_for("/b", {(event, second) for event in EVENTS})
        assert all(json.loads(body)["conversation"] != second for _, body in receiver.events("/a"))
        with sqlite3.connect(workdir / "data" / "carehub.sqlite") as db:
            queued = db.execute("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook = ? AND body LIKE ?",
                                (made["/a"]["id"], f"%{second}%")).fetchone()[0]
            assert queued == 0
            assert db.execute("SELECT COUNT(*) FROM webhook_deliveries WHERE body LIKE '%knee%'").fetchone()[0] == 0
    finally:
        hub.stop()
        receiver.close()

    # Audited, never with the secret.
    rows = [json.loads(line) for line in carehub("audit", "export", "--data", str(workdir / "data")).stdout.splitlines()]
    actions = [(row["action"], row["target"]) for row in rows if row["action"].startswith("webhook.")]
    assert actions == [("webhook.created", made["/a"]["id"]), ("webhook.created", made["/b"]["id"]), ("webhook.deleted", made["/a"]["id"])]
    assert not any(made[path]["secret"] in json.dumps(row) for row in rows for path in made)


def test_an_organisation_holds_at_most_ten_subscriptions(workdir):
    declare(workdir, RIVERSIDE_NAME, "integration ehr type=api baa=yes")
    _, token = make_token(workdir, RIVERSIDE, "ehr", ["webhooks:write"])
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        hooks = org_path(RIVERSIDE, "/webhooks")
        for n in range(10):
            made = call(hub, "POST", hooks, token, {"url": f"https://hooks.example.org/{n}", "events": ["message.created"]})
            assert made.status == 201, made
        over = call(hub, "POST", hooks, token, {"url": "https://hooks.example.org/11", "events": ["message.created"]})
        assert over.status == 409 and over.code == "conflict", over
    finally:
        hub.stop()
