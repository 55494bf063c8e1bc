"""Integration tokens through the admin API over the WebSocket, against the real hub: a token that
reaches PHI waits for approval; its maker approves it only with a fresh code from their own
authenticator, another admin without one; revocation; and the secret, shown once, is nowhere
else: not in tokens.list, not in the audit trail, not in the hub's log."""

import json
import time

from conftest import AUTHENTICATOR, Hub, add_account, carehub, staff, totp
from test_admin import admin, run
from test_tokens import declare

RIVERSIDE = "riverside-clinic"


def wrong_code(secret):
    """Six digits the authenticator shows for no step the hub accepts now."""
    step = int(time.time()) // 30
    shown = {totp(secret, s) for s in range(step - 2, step + 3)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in shown)


def test_admins_make_approve_and_revoke_tokens_over_the_admin_api(workdir):
    declare(workdir, "integration ehr type=api baa=yes", "integration dashboard type=api baa=no")
    add_account(workdir, RIVERSIDE, "dr.chief", "admin", "riverside-chief-test-pass")
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    secrets = []

    async def scenario():
        boss, _ = await staff(hub, RIVERSIDE, "dr.admin")
        chief, _ = await staff(hub, RIVERSIDE, "dr.chief")
        key = (hub.data, RIVERSIDE, "dr.admin")

        listed = (await admin(boss, "tokens.list"))["result"]
        assert listed["tokens"] == [] and listed["hipaa"] is True
        assert listed["integrations"] == [{"name": "ehr", "baa": True}, {"name": "dashboard", "baa": False}]
        assert {"scope": "transcripts:read", "risk": "high"} in listed["scopes"]

        made = await admin(boss, "tokens.create", integration="ehr", scopes=["transcripts:read", "org:read"], expiresDays=30,
                           allowFrom=["127.0.0.0/8"])
        assert made["type"] == "admin", made
        token, secret = made["result"]["token"], made["result"]["secret"]
        secrets.append(secret)
        assert secret.startswith("chk_")
        assert token["state"] == "awaiting_approval" and token["risk"] == "high" and token["createdBy"] == "dr.admin"
        assert token["scopes"] == ["org:read", "transcripts:read"] and token["allowFrom"] == ["127.0.0.0/8"]
        assert token["expiresAt"] - token["createdAt"] == 30 * 86_400_000
        assert token["decidedBy"] is None and token["decidedAt"] is None

        # Its maker: no code, a wrong code and the code the login used are all refused.
        missing = await admin(boss, "tokens.approve", token=token["id"])
        assert missing["code"] == "forbidden" and "authenticator" in missing["message"], missing
        wrong = await admin(boss, "tokens.approve", token=token["id"], totp=wrong_code(AUTHENTICATOR.secrets[key]))
        assert wrong["code"] == "auth_failed", wrong
        used = totp(AUTHENTICATOR.secrets[key], AUTHENTICATOR.last_step[key])
        replayed = await admin(boss, "tokens.approve", token=token["id"], totp=used)
        assert replayed.get("code") == "auth_failed", replayed
        state = (await admin(boss, "tokens.list"))["result"]["tokens"][0]["state"]
        assert state == "awaiting_approval"
        # A fresh code of their own authenticator approves it.
        approved = await admin(boss, "tokens.approve", token=token["id"], totp=AUTHENTICATOR.code(key))
        assert approved["type"] == "admin", approved
        assert approved["result"]["token"]["state"] == "active" and approved["result"]["token"]["decidedBy"] == "dr.admin"

        # A second admin approves a colleague's token without a code; an undeclared or BAA-less
        # integration gets no PHI token.
        second = await admin(boss, "tokens.create", integration="ehr", scopes=["messages:read"])
        secrets.append(second["result"]["secret"])
        assert second["result"]["token"]["expiresAt"] - second["result"]["token"]["createdAt"] == 90 * 86_400_000
        by_chief = await admin(chief, "tokens.approve", token=second["result"]["token"]["id"])
        assert by_chief["type"] == "admin", by_chief
        assert by_chief["result"]["token"]["state"] == "active" and by_chief["result"]["token"]["decidedBy"] == "dr.chief"
        no_baa = await admin(boss, "tokens.create", integration="dashboard", scopes=["messages:read"])
        assert no_baa["code"] == "forbidden" and "no BAA" in no_baa["message"], no_baa
        unknown = await admin(boss, "tokens.create", integration="pager", scopes=["org:read"])
        assert unknown["code"] == "not_found", unknown
        bad = await admin(boss, "tokens.create", integration="ehr", scopes=["org:read"], expiresDays=400)
        assert bad["code"] == "invalid_field" and "expiresDays" in bad["message"], bad

        revoked = await admin(chief, "tokens.revoke", token=token["id"])
        assert revoked["result"]["token"]["state"] == "revoked" and revoked["result"]["token"]["decidedBy"] == "dr.chief"
        again = await admin(chief, "tokens.revoke", token=token["id"])
        assert again["code"] == "conflict", again

        final = await admin(boss, "tokens.list")
        rows = final["result"]["tokens"]
        assert [(row["id"], row["state"]) for row in rows] == [
            (second["result"]["token"]["id"], "active"), (token["id"], "revoked")]
        text = json.dumps(final)
        assert all(shown not in text for shown in secrets) and "chk_" not in text and all("secret" not in row for row in rows)

        events = (await admin(boss, "audit.list", limit=100))["result"]["events"]
        refused = [event["detail"] for event in reversed(events) if event["action"] == "token.approval_refused"]
        assert refused == ["reason=code_missing", "reason=code", "reason=code_replayed"]
        decided = [(event["action"], event["actor"]) for event in reversed(events) if event["action"] in ("token.approved", "token.revoked")]
        assert decided == [("token.approved", "dr.admin"), ("token.approved", "dr.chief"), ("token.revoked", "dr.chief")]
        for client in (boss, chief):
            await client.close()

    try:
        run(scenario())
    finally:
        assert hub.stop() == 0
    log = hub.log_text()
    exported = carehub("audit", "export", "--data", str(workdir / "data")).stdout
    assert len(secrets) == 2
    for shown in secrets:
        assert shown not in log and shown not in exported
        assert shown.split("_")[2] not in log and shown.split("_")[2] not in exported
    assert "token.approval_refused" in exported
    assert carehub("audit", "verify", "--data", str(workdir / "data")).returncode == 0
