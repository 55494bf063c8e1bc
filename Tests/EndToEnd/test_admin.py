"""The admin API over the WebSocket, against the real hub and the real pipeline.conf: edits that
apply live and edits the HIPAA floor refuses, the HIPAA switch with its BAA attestation and its
purge, accounts, and the audit log with its verification."""

import asyncio
import sqlite3

from conftest import PASSWORDS, TIMEOUT, Client, carehub, login, staff, visitor

RIVERSIDE = "riverside-clinic"
LOTUS = "lotus-wellness"


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 4))


async def admin(client, op, **fields):
    """Sends an admin op; returns its `admin` reply or the error."""
    reply = await client.request({"type": "admin", "op": op, "id": op, **fields}, "admin")
    if reply["type"] == "admin":
        assert reply["op"] == op and reply["id"] == op, reply
    return reply


def history(workdir):
    directory = workdir / "pipeline.conf.history"
    return sorted(directory.iterdir()) if directory.exists() else []


def test_admin_edits_the_pipeline_live_and_the_floor_refuses_what_hipaa_forbids(hub):
    config = hub.config
    original = config.read_text()

    async def scenario():
        boss, session = await staff(hub, RIVERSIDE, "dr.admin")
        nurse, before = await staff(hub)
        assert before["idleTimeoutSeconds"] == 900

        current = await admin(boss, "pipeline.get")
        result = current["result"]
        assert result["hipaa"] is True and result["text"].startswith("[org riverside-clinic]")
        assert "[org lotus-wellness]" not in result["text"]
        assert [stage["name"] for stage in result["stages"]] == ["auth", "idle", "encrypt", "store", "purge", "fanout"]
        assert result["inForce"] is True and result["attestation"] is None

        # Removing encryption breaks the HIPAA floor: refused with the reason and its line.
        no_encrypt = result["text"].replace("stage encrypt  cipher=aes-256-gcm\n", "")
        refused = await admin(boss, "pipeline.replace", text=no_encrypt, base=result["version"])
        assert refused["type"] == "error" and refused["code"] == "config_refused", refused
        assert any("must run stage 'encrypt'" in issue["message"] and issue["line"] == 1 for issue in refused["issues"]), refused
        # So does an idle timeout above 15 minutes, pointing at the idle line.
        slow = result["text"].replace("timeout=15m", "timeout=30m")
        refused = await admin(boss, "pipeline.check", text=slow)
        idle_line = slow.split("\n").index(next(line for line in slow.split("\n") if line.startswith("stage idle"))) + 1
        assert [issue["line"] for issue in refused["issues"]] == [idle_line], refused
        assert "15m or less" in refused["issues"][0]["message"]
        # HIPAA mode itself changes only through the switch, and host paths and programs stay the operator's.
        refused = await admin(boss, "pipeline.check", text=result["text"].replace("hipaa = on", "hipaa = off"))
        assert any("HIPAA switch" in issue["message"] for issue in refused["issues"]), refused
        mailer = result["text"] + "\nintegration desk type=email to=desk@example.org baa=yes command=/bin/sh\n"
        refused = await admin(boss, "pipeline.check", text=mailer)
        assert any("only the operator" in issue["message"] for issue in refused["issues"]), refused
        # Another organisation's section cannot be smuggled in.
        refused = await admin(boss, "pipeline.check", text=result["text"] + "\n[org lotus-wellness]\nhipaa = off\nstage auth\n")
        assert refused["code"] == "config_refused", refused
        assert config.read_text() == original and history(hub.workdir) == []

        # Lowering the idle timeout to 10 minutes applies live.
        quicker = result["text"].replace("timeout=15m", "timeout=10m")
        checked = await admin(boss, "pipeline.check", text=quicker, base=result["version"])
        assert checked["result"]["valid"] is True and config.read_text() == original
        applied = await admin(boss, "pipeline.replace", text=quicker, base=result["version"])
        assert applied["type"] == "admin", applied
        idle = next(stage for stage in applied["result"]["stages"] if stage["name"] == "idle")
        assert "timeout=10m" in idle["parameters"]
        assert applied["result"]["version"] != result["version"] and applied["result"]["inForce"] is True

        # The file changed in place (the rest byte for byte), and the old version was kept.
        text = config.read_text()
        assert text == original.replace("stage idle     timeout=15m", "stage idle     timeout=10m")
        kept = history(hub.workdir)
        assert len(kept) == 1 and kept[0].read_text() == original and kept[0].name.endswith("~riverside-clinic~dr.admin.conf")
        assert applied["result"]["versions"] == [kept[0].name]

        # Nobody was dropped: the nurse's connection still works, and a new login gets 10 minutes.
        assert (await nurse.request({"type": "rooms", "id": "r"}, "rooms"))["type"] == "rooms"
        _, after = await staff(hub)
        assert after["idleTimeoutSeconds"] == 600

        # An edit made from a version that is no longer current is refused, not merged.
        stale = await admin(boss, "pipeline.replace", text=result["text"], base=result["version"])
        assert stale["code"] == "conflict", stale

        # The change is audited with the admin's name and the diff.
        events = (await admin(boss, "audit.list", limit=50))["result"]["events"]
        changed = [event for event in events if event["action"] == "config.changed"]
        assert changed and changed[0]["actor"] == "dr.admin"
        assert "-idle timeout=15m" in changed[0]["detail"] and "+idle timeout=10m" in changed[0]["detail"]

        # Staff cannot use the admin API.
        forbidden = await admin(nurse, "pipeline.get")
        assert forbidden["code"] == "forbidden", forbidden
        unknown = await boss.request({"type": "admin", "op": "pipeline.delete", "id": "x"}, "admin")
        assert unknown["code"] == "invalid_field" and "pipeline.replace" in unknown["message"]
        for client in (boss, nurse):
            await client.close()

    run(scenario())
    # The same check the operator runs agrees with what the hub wrote.
    assert "riverside-clinic" in carehub("config", "check", str(config)).stdout


def test_hipaa_switch_needs_an_attestation_and_a_confirmed_purge(hub):
    data = str(hub.data)
    PASSWORDS[(LOTUS, "lotus.admin")] = "lotus-admin-test-pass"
    carehub("user", "add", "--org", LOTUS, "--user", "lotus.admin", "--role", "admin", "--data", data,
            "--config", str(hub.config), stdin=PASSWORDS[(LOTUS, "lotus.admin")] + "\n")

    async def scenario():
        # Admins log in with a second factor even where it is optional for staff.
        boss, _ = await staff(hub, LOTUS, "lotus.admin")
        current = (await admin(boss, "pipeline.get"))["result"]
        assert current["hipaa"] is False

        attestation = {"baaSignedOn": "2026-01-15", "privacyOfficer": "Dana Reyes", "privacyOfficerEmail": "privacy@lotus.example"}
        bad = await admin(boss, "hipaa.enable", **{**attestation, "baaSignedOn": "2999-01-01"})
        assert bad["code"] == "invalid_field" and "future" in bad["message"], bad
        bad = await admin(boss, "hipaa.enable", **{**attestation, "privacyOfficerEmail": "nobody"})
        assert bad["code"] == "invalid_field", bad
        # The pipeline as it stands does not meet the floor: every gap is listed.
        refused = await admin(boss, "hipaa.enable", **attestation)
        messages = " | ".join(issue["message"] for issue in refused["issues"])
        assert refused["code"] == "config_refused" and "encrypt" in messages and "twofactor=required" in messages, refused

        # Bring it up to the floor first (still HIPAA off), then switch.
        text = (current["text"].replace("twofactor=optional", "twofactor=required")
                .replace("timeout=60m", "timeout=15m").replace("stage store", "stage encrypt\nstage store"))
        applied = await admin(boss, "pipeline.replace", text=text, base=current["version"])
        assert applied["type"] == "admin", applied
        # A colleague logs in under the new rules (with a second factor: a session without one
        # would be revoked by the auth stage's next check, before or after the switch).
        coach, _ = await staff(hub, LOTUS, "coach.sam")
        patient, welcome = await visitor(hub, LOTUS)
        enabled = await admin(boss, "hipaa.enable", **attestation)
        assert enabled["type"] == "admin" and enabled["result"]["hipaa"] is True, enabled
        assert enabled["result"]["attestation"]["privacyOfficer"] == "Dana Reyes"
        assert enabled["result"]["attestation"]["recordedBy"] == "lotus.admin"
        assert "hipaa = on" in hub.config.read_text().split("[org lotus-wellness]")[1]
        # Everyone in the organisation starts over under HIPAA rules, this admin included.
        for client in (coach, patient, boss):
            assert (await client.recv("session_expired"))["reason"] == "hipaa_mode"
        # Logging in again takes the password and the second factor.
        again = await Client.connect(hub)
        without = await login(again, LOTUS, "coach.sam")
        assert without["type"] == "error" and without["code"] == "auth_failed", without
        await again.close()

        # Switching off is refused while a conversation is held, then done with the purge confirmed.
        boss, _ = await staff(hub, LOTUS, "lotus.admin")
        patient, welcome = await visitor(hub, LOTUS)
        await patient.request({"type": "send", "room": welcome["conversation"], "text": "lotus canary", "id": "s"}, "ack")
        held = await admin(boss, "hipaa.disable")
        assert held["code"] == "conflict" and "conversation" in held["message"], held
        off = await admin(boss, "hipaa.disable", purge=True)
        assert off["type"] == "admin" and off["result"]["hipaa"] is False and off["result"]["conversations"] == 0, off
        assert (await patient.recv("ended"))["room"] == welcome["conversation"]
        assert "hipaa = off" in hub.config.read_text().split("[org lotus-wellness]")[1]
        for client in (boss, patient, again):
            await client.close()

    run(scenario())
    with sqlite3.connect(hub.data / "carehub.sqlite") as db:
        rows = db.execute("SELECT actor, action, detail FROM audit_events WHERE org = ? ORDER BY id", (LOTUS,)).fetchall()
        attested = db.execute("SELECT signed_on, officer_name, officer_email, recorded_by FROM baa_attestations").fetchall()
    actions = [row[1] for row in rows]
    assert attested == [("2026-01-15", "Dana Reyes", "privacy@lotus.example", "lotus.admin")]
    assert ("lotus.admin", "baa.attested") in [(row[0], row[1]) for row in rows]
    assert ("lotus.admin", "hipaa.enabled") in [(row[0], row[1]) for row in rows]
    assert any(row[1] == "conversation.purged" and "reason=hipaa_off" in row[2] for row in rows)
    assert actions.index("baa.attested") < actions.index("hipaa.enabled") < actions.index("hipaa.disabled")
    assert not any("lotus canary" in str(row) for row in rows)


def test_admin_manages_accounts_and_verifies_the_audit_log(hub):
    async def scenario():
        boss, _ = await staff(hub, RIVERSIDE, "dr.admin")
        weak = await admin(boss, "users.add", user="nurse.kim", role="staff", password="password123")
        assert weak["code"] == "invalid_field" and "password refused" in weak["message"], weak
        added = await admin(boss, "users.add", user="nurse.kim", role="staff", password="kim-initial-passphrase")
        users = {user["user"]: user for user in added["result"]["users"]}
        assert users["nurse.kim"] == {"user": "nurse.kim", "role": "staff", "disabled": False, "twoFactor": False, "locked": False}
        assert users["dr.admin"]["twoFactor"] is True
        taken = await admin(boss, "users.add", user="nurse.kim", role="staff", password="kim-initial-passphrase")
        assert taken["code"] == "conflict", taken

        PASSWORDS[(RIVERSIDE, "nurse.kim")] = "kim-initial-passphrase"
        kim, _ = await staff(hub, RIVERSIDE, "nurse.kim")
        promoted = await admin(boss, "users.set_role", user="nurse.kim", role="admin")
        assert {user["user"]: user["role"] for user in promoted["result"]["users"]}["nurse.kim"] == "admin"
        # A role change ends the live session at once: it is gone before the admin hears back.
        refused = await kim.request({"type": "rooms", "id": "after"}, "rooms")
        assert refused["type"] == "error" and refused["code"] in ("session_expired", "unauthenticated"), refused
        assert (await kim.recv("session_expired"))["reason"] == "revoked"
        disabled = await admin(boss, "users.disable", user="nurse.kim")
        assert {user["user"]: user["disabled"] for user in disabled["result"]["users"]}["nurse.kim"] is True
        reset = await admin(boss, "users.reset_2fa", user="nurse.kim")
        assert {user["user"]: user["twoFactor"] for user in reset["result"]["users"]}["nurse.kim"] is False
        assert (await admin(boss, "users.disable", user="dr.admin"))["code"] == "forbidden"
        assert (await admin(boss, "users.enable", user="ghost"))["code"] == "not_found"

        listing = await admin(boss, "audit.list", limit=5)
        events = listing["result"]["events"]
        assert len(events) == 5 and listing["result"]["more"] is True
        assert [event["action"] for event in events[:4]] == ["user.2fa_reset", "user.disabled", "session.revoked", "user.role_changed"]
        assert events[0]["actor"] == "dr.admin" and events[0]["target"] == "nurse.kim"
        older = await admin(boss, "audit.list", limit=5, before=events[-1]["id"])
        assert older["result"]["events"][0]["id"] < events[-1]["id"]
        assert any(event["action"] == "user.created" for event in (await admin(boss, "audit.list", limit=100))["result"]["events"])

        verdict = (await admin(boss, "audit.verify"))["result"]
        assert verdict["holds"] is True and verdict["events"] > 5, verdict
        with sqlite3.connect(hub.data / "carehub.sqlite") as db:
            db.execute("UPDATE audit_events SET detail = 'role=admin' WHERE action = 'user.created'")
        verdict = (await admin(boss, "audit.verify"))["result"]
        assert verdict["holds"] is False and "altered" in verdict["reason"], verdict
        await boss.close()
        await kim.close()

    run(scenario())
