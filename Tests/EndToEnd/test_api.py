"""The integration API against the real hub: each scope opens its endpoints and nothing else, PHI
scopes only once approved and never after revocation or expiry, one organisation's token never
reaches another's data, HIPAA mode's BAA rule, every PHI call in the audit trail with the
integration's name (and no patient text anywhere but where it is sealed), paging, ETags, rate
limits, and a conversation an integration opens that the patient then joins."""

import asyncio
import json
import sqlite3
import time

from api_client import (HIGH, LOTUS, LOTUS_NAME, LOW, MEDIUM, RIVERSIDE, RIVERSIDE_NAME, approve, call, declare, make_token,
                        org_path, reload, set_auth)
from conftest import TIMEOUT, Hub, add_account, carehub, metrics, staff, visitor

AUTH_LINE = "stage auth     visitors=on twofactor=required lockout=5 lockout_time=15m visitor_idle=30m"


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 6))


def endpoints(room, attachment="a_" + "0123456789abcdef" * 2):
    """Every endpoint, the scope it needs, and a body, in an order that leaves each usable."""
    return [
        ("GET", "", "org:read", None),
        ("GET", "/queue", "queue:read", None),
        ("GET", "/users", "users:read", None),
        ("POST", "/users", "users:write", {"user": "temp.%d" % time.monotonic_ns(), "role": "staff", "password": "a-long-enough-pass-9"}),
        ("POST", "/users/nurse.joy/disable", "users:write", None),
        ("POST", "/users/nurse.joy/enable", "users:write", None),
        ("PUT", "/users/nurse.joy/role", "users:write", {"role": "staff"}),
        ("GET", "/conversations", "conversations:read", None),
        ("GET", f"/conversations/{room}", "conversations:read", None),
        ("PUT", f"/conversations/{room}/assignee", "conversations:write", {"user": "nurse.joy"}),
        ("GET", f"/conversations/{room}/messages", "messages:read", None),
        ("GET", f"/conversations/{room}/transcript", "transcripts:read", None),
        ("GET", f"/conversations/{room}/form", "forms:read", None),
        ("GET", f"/attachments/{attachment}", "attachments:read", None),
        ("GET", "/audit", "audit:read", None),
        ("GET", "/audit/export", "audit:read", None),
        ("GET", "/audit/verify", "audit:read", None),
        ("GET", "/webhooks", "webhooks:write", None),
        ("POST", "/webhooks", "webhooks:write", {"url": "https://127.0.0.1:9/events", "events": ["conversation.ended"]}),
        ("DELETE", "/webhooks/wh_0123456789abcdef", "webhooks:write", None),
        ("POST", "/conversations", "conversations:open", {"text": "Your appointment is confirmed."}),
        ("POST", f"/conversations/{room}/end", "conversations:write", None),
    ]


def test_each_scope_opens_its_endpoints_and_no_other(workdir):
    declare(workdir, RIVERSIDE_NAME, "integration ehr type=api baa=yes")
    set_auth(workdir, AUTH_LINE, "api_calls=100000")
    tokens = {scope: make_token(workdir, RIVERSIDE, "ehr", [scope]) for scope in LOW + MEDIUM + HIGH}
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        # Until approved, a PHI token opens nothing at all.
        pending = call(hub, "POST", org_path(RIVERSIDE, "/conversations"), tokens["conversations:open"][1], {"text": "hello"})
        assert pending.status == 401 and pending.code == "auth_failed" and "approval" in pending.json["detail"], pending

        run(approve(hub, *(tokens[scope][0] for scope in HIGH)))

        opened = call(hub, "POST", org_path(RIVERSIDE, "/conversations"), tokens["conversations:open"][1], {"text": "hello"})
        assert opened.status == 201, opened
        room = opened.json["id"]

        for method, rest, needed, body in endpoints(room):
            for scope, (_, secret) in tokens.items():
                answer = call(hub, method, org_path(RIVERSIDE, rest), secret, body)
                if scope == needed:
                    # Let through by the scope (what follows may still refuse: assignment is off here).
                    assert answer.status < 500 and (answer.code is None or "scope" not in answer.json["detail"]), (method, rest, scope, answer)
                else:
                    assert answer.status == 403 and answer.code == "forbidden", (method, rest, scope, answer)
                    assert needed in answer.json["detail"], answer
            # No token at all: unauthenticated, and the answer says how to send one.
            bare = call(hub, method, org_path(RIVERSIDE, rest), None, body)
            assert bare.status == 401 and bare.code == "unauthenticated" and "Bearer" in bare.headers["www-authenticate"], bare

        # Every refusal for a missing scope is on the record, with the scope it lacked.
        rows = [json.loads(line) for line in carehub("audit", "export", "--data", str(workdir / "data")).stdout.splitlines()]
        refused = [row for row in rows if row["action"] == "api.refused"]
        assert {row["detail"].split("scope=")[1] for row in refused if "reason=scope" in row["detail"]} == set(LOW + MEDIUM + HIGH)
        assert any(row["detail"] == "reason=awaiting_approval" for row in refused)
    finally:
        hub.stop()


def test_a_phi_token_works_only_between_approval_and_revocation_or_expiry(workdir):
    declare(workdir, RIVERSIDE_NAME, "integration ehr type=api baa=yes")
    token_id, secret = make_token(workdir, RIVERSIDE, "ehr", ["conversations:open", "messages:read"])
    expiring_id, expiring = make_token(workdir, RIVERSIDE, "ehr", ["conversations:open"])
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        path = org_path(RIVERSIDE, "/conversations")
        assert call(hub, "POST", path, secret, {"text": "x"}).code == "auth_failed"
        run(approve(hub, token_id, expiring_id))
        opened = call(hub, "POST", path, secret, {"text": "Results are in."})
        assert opened.status == 201, opened
        assert call(hub, "GET", org_path(RIVERSIDE, f"/conversations/{opened.json['id']}/messages"), secret).status == 200

        carehub("tokens", "revoke", "--org", RIVERSIDE, "--id", token_id, "--data", str(workdir / "data"),
                "--config", str(workdir / "pipeline.conf"))
        revoked = call(hub, "GET", org_path(RIVERSIDE, f"/conversations/{opened.json['id']}/messages"), secret)
        assert revoked.status == 401 and revoked.code == "auth_failed" and "revoked" in revoked.json["detail"], revoked

        # A day later the other one has expired (its expiry moved into the past, as time would).
        with sqlite3.connect(workdir / "data" / "carehub.sqlite") as db:
            db.execute("UPDATE api_tokens SET expires_at = ? WHERE id = ?", (time.time() - 1, expiring_id))
        expired = call(hub, "POST", path, expiring, {"text": "x"})
        assert expired.status == 401 and "expired" in expired.json["detail"], expired
    finally:
        hub.stop()


def test_one_organisations_token_never_reaches_anothers_data(workdir):
    declare(workdir, RIVERSIDE_NAME, "integration ehr type=api baa=yes")
    declare(workdir, LOTUS_NAME, "integration crm type=api baa=no")
    river_id, river = make_token(workdir, RIVERSIDE, "ehr", ["org:read", "conversations:read", "messages:read"])
    lotus_id, lotus = make_token(workdir, LOTUS, "crm", ["org:read", "conversations:read", "messages:read", "conversations:open"])
    add_account(workdir, LOTUS, "owner.kim", "admin", "lotus-owner-test-pass")
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        run(approve(hub, river_id))
        run(approve(hub, lotus_id, org=LOTUS, user="owner.kim"))
        lotus_room = call(hub, "POST", org_path(LOTUS, "/conversations"), lotus, {"text": "Class moved to 6pm."}).json["id"]
        # A token names its organisation: on another's path it is no token at all.
        for token, org in ((river, LOTUS), (lotus, RIVERSIDE)):
            answer = call(hub, "GET", org_path(org), token)
            assert answer.status == 401 and answer.code == "auth_failed", answer
        # Another organisation's room through one's own path is not found, with no hint it exists.
        for rest in (f"/conversations/{lotus_room}", f"/conversations/{lotus_room}/messages"):
            answer = call(hub, "GET", org_path(RIVERSIDE, rest), river)
            assert answer.status == 404 and answer.code == "not_found", answer
        assert call(hub, "GET", org_path(RIVERSIDE, "/conversations"), river).json["conversations"] == []
        assert call(hub, "GET", org_path("no-such-org"), river).code in ("unknown_org", "auth_failed")
    finally:
        hub.stop()


def test_in_hipaa_mode_an_integration_without_a_baa_loses_its_phi_token(workdir):
    declare(workdir, RIVERSIDE_NAME, "integration ehr type=api baa=yes")
    token_id, secret = make_token(workdir, RIVERSIDE, "ehr", ["org:read", "messages:read"])
    low_id, low = make_token(workdir, RIVERSIDE, "ehr", ["org:read"])
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        run(approve(hub, token_id))
        assert call(hub, "GET", org_path(RIVERSIDE), secret).status == 200
        # The BAA ends: the integration is marked baa=no, and its PHI token stops at once.
        config = workdir / "pipeline.conf"
        config.write_text(config.read_text().replace("integration ehr type=api baa=yes", "integration ehr type=api baa=no"))
        reload(hub)
        refused = call(hub, "GET", org_path(RIVERSIDE), secret)
        assert refused.status == 401 and "BAA" in refused.json["detail"], refused
        assert call(hub, "GET", org_path(RIVERSIDE), low).status == 200
        # Undeclared, the integration's tokens open nothing.
        config.write_text(config.read_text().replace("integration ehr type=api baa=no\n", ""))
        reload(hub)
        gone = call(hub, "GET", org_path(RIVERSIDE), low)
        assert gone.status == 401 and "integration ehr" in gone.json["detail"], gone
        rows = [json.loads(line) for line in carehub("audit", "export", "--data", str(workdir / "data")).stdout.splitlines()]
        reasons = [row["detail"] for row in rows if row["action"] == "api.refused"]
        assert "reason=no_baa" in reasons and "reason=integration" in reasons, reasons
    finally:
        hub.stop()


CANARY = "CANARY-api-7f3e lab result: potassium 6.1"
REPLY = "CANARY-api-reply thank you, I will come in"


def test_phi_calls_are_audited_with_the_integration_and_patient_text_stays_sealed(workdir):
    declare(workdir, RIVERSIDE_NAME, "integration ehr type=api baa=yes")
    token_id, secret = make_token(workdir, RIVERSIDE, "ehr", ["conversations:open", "messages:read", "transcripts:read", "forms:read"])
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        run(approve(hub, token_id))

        async def scenario():
            nurse, _ = await staff(hub, RIVERSIDE, "nurse.joy")
            opened = call(hub, "POST", org_path(RIVERSIDE, "/conversations"), secret, {"text": CANARY})
            assert opened.status == 201, opened
            room, patient_token = opened.json["id"], opened.json["visitorToken"]
            # Staff see the new conversation appear, as they see a visitor's.
            appeared = await nurse.recv("room_opened")
            assert appeared["room"] == room
            # The patient's widget resumes it with the token and finds the message, in the clinic's name.
            patient, welcome = await visitor(hub, RIVERSIDE, token=patient_token)
            assert welcome["conversation"] == room
            assert [(m["text"], m["fromName"]) for m in welcome["history"]] == [(CANARY, "Riverside Family Clinic")]
            ack = await patient.request({"type": "send", "room": room, "text": REPLY, "id": "s"}, "ack")
            assert ack["type"] == "ack", ack
            await patient.close()
            await nurse.close()
            return room

        room = run(scenario())
        messages = call(hub, "GET", org_path(RIVERSIDE, f"/conversations/{room}/messages"), secret)
        assert [(m["seq"], m["from"], m["text"]) for m in messages.json["messages"]] == [
            (1, "integration:ehr", CANARY), (2, "visitor", REPLY)]
        transcript = call(hub, "GET", org_path(RIVERSIDE, f"/conversations/{room}/transcript"), secret)
        assert transcript.json["complete"] is True and len(transcript.json["messages"]) == 2
        assert call(hub, "GET", org_path(RIVERSIDE, f"/conversations/{room}/form"), secret).json == {"form": None}

        rows = [json.loads(line) for line in carehub("audit", "export", "--data", str(workdir / "data")).stdout.splitlines()]
        phi = [row for row in rows if row["action"] == "api.phi"]
        routes = [row["detail"].split("route=")[1] for row in phi]
        assert routes == ["/api/v1/orgs/{org}/conversations", "/api/v1/orgs/{org}/conversations/{room}/messages",
                          "/api/v1/orgs/{org}/conversations/{room}/transcript", "/api/v1/orgs/{org}/conversations/{room}/form"]
        assert all(row["actor"] == "integration:ehr" and row["target"] == room and f"token={token_id}" in row["detail"] for row in phi)
        assert all(row["at"] > 0 for row in phi)
        # Reads of the messages themselves are on the record too, as the consoles' are.
        assert [row["detail"] for row in rows if row["action"] == "phi.read" and row["actor"] == "integration:ehr"] == [
            "messages=2 seq=1-2", "messages=2 seq=1-2"]
        exported = carehub("audit", "export", "--data", str(workdir / "data")).stdout
        metrics_text = metrics(hub)
    finally:
        hub.stop()
    for canary in ("CANARY-api-7f3e", "CANARY-api-reply"):
        assert canary not in exported and canary not in metrics_text and canary not in hub.log_text()
        for path in (workdir / "data").rglob("*"):
            if path.is_file():
                assert canary.encode() not in path.read_bytes(), path


def test_lists_page_by_cursor_polled_answers_carry_etags_and_tokens_are_rate_limited(workdir):
    declare(workdir, LOTUS_NAME, "integration crm type=api baa=no")
    set_auth(workdir, "stage auth     visitors=on twofactor=optional", "api_calls=30")
    token_id, secret = make_token(workdir, LOTUS, "crm", ["conversations:open", "conversations:read", "queue:read", "audit:read"])
    add_account(workdir, LOTUS, "owner.kim", "admin", "lotus-owner-test-pass")
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        run(approve(hub, token_id, org=LOTUS, user="owner.kim"))
        opened = [call(hub, "POST", org_path(LOTUS, "/conversations"), secret, {"text": f"note {n}"}).json["id"] for n in range(5)]
        seen, cursor = [], None
        while True:
            answer = call(hub, "GET", org_path(LOTUS, "/conversations?limit=2" + (f"&cursor={cursor}" if cursor else "")), secret)
            assert answer.status == 200, answer
            seen += [conversation["id"] for conversation in answer.json["conversations"]]
            cursor = answer.json["nextCursor"]
            if cursor is None:
                break
        assert seen == list(reversed(opened))
        bad = call(hub, "GET", org_path(LOTUS, "/conversations?cursor=nonsense"), secret)
        assert bad.status == 400 and bad.code == "invalid_field", bad

        first = call(hub, "GET", org_path(LOTUS, "/queue"), secret)
        tag = first.headers["etag"]
        again = call(hub, "GET", org_path(LOTUS, "/queue"), secret, headers={"If-None-Match": tag})
        assert again.status == 304 and again.body == b"" and again.headers["etag"] == tag
        call(hub, "POST", org_path(LOTUS, f"/conversations/{opened[0]}/end"), secret)  # refused: no scope; no change either
        changed = call(hub, "GET", org_path(LOTUS, "/conversations?limit=1"), secret)
        assert call(hub, "GET", org_path(LOTUS, "/conversations?limit=1"), secret,
                    headers={"If-None-Match": changed.headers["etag"]}).status == 304

        # 30 calls a minute: the rest are refused with a time to wait.
        answers = [call(hub, "GET", org_path(LOTUS, "/queue"), secret) for _ in range(40)]
        limited = [answer for answer in answers if answer.status == 429]
        assert limited and limited[0].code == "rate_limited" and int(limited[0].headers["retry-after"]) >= 1, answers[-1]
    finally:
        hub.stop()
