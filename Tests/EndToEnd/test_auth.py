"""Staff authentication end to end: TOTP enrolment, replay, recovery codes, lockout, allow-list,
idle expiry that pings cannot defeat, HIPAA mode switched on live, and the audit rows it leaves."""

import asyncio
import signal
import sqlite3
import time

from conftest import AUTHENTICATOR, TIMEOUT, Client, Hub, carehub, login, staff, totp, visitor


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 3))


def audit_rows(hub):
    with sqlite3.connect(hub.data / "carehub.sqlite") as db:
        return db.execute("SELECT org, actor, address, action, target, detail FROM audit_events ORDER BY id").fetchall()


def configure(workdir, old, new):
    config = workdir / "pipeline.conf"
    text = config.read_text()
    assert old in text, old
    config.write_text(text.replace(old, new))


def test_enrolment_replay_and_recovery_codes(hub):
    async def scenario():
        client = await Client.connect(hub)
        enroll = await login(client, "riverside-clinic", "nurse.joy")
        assert enroll["type"] == "enroll", enroll
        assert enroll["otpauthURI"].startswith("otpauth://totp/Riverside%20Family%20Clinic:nurse.joy?secret=" + enroll["secret"])
        # Until enrolment completes the account can do nothing else.
        refused = await client.request({"type": "rooms", "id": "r"}, "rooms")
        assert refused["code"] == "unauthenticated"

        step = int(time.time()) // 30
        wrong = await login(client, "riverside-clinic", "nurse.joy", code="000000" if totp(enroll["secret"], step) != "000000" else "111111")
        assert wrong["code"] == "auth_failed"
        await asyncio.sleep(1.1)  # the back-off after one failure
        code = totp(enroll["secret"], step)
        session = await login(client, "riverside-clinic", "nurse.joy", code=code)
        assert session["type"] == "session", session
        codes = session["recoveryCodes"]
        assert len(codes) == 10 and len(set(codes)) == 10

        # The same code again, from another connection: a replay.
        other = await Client.connect(hub)
        replay = await login(other, "riverside-clinic", "nurse.joy", code=code)
        assert replay["code"] == "auth_failed"
        await asyncio.sleep(1.1)
        # A recovery code works once.
        third = await Client.connect(hub)
        assert (await login(third, "riverside-clinic", "nurse.joy", code=codes[0]))["type"] == "session"
        fourth = await Client.connect(hub)
        assert (await login(fourth, "riverside-clinic", "nurse.joy", code=codes[0]))["code"] == "auth_failed"

        rows = audit_rows(hub)
        actions = [row[3] for row in rows]
        for expected in ("enrolment.started", "enrolment.completed", "login.success", "recovery_code.used", "login.failure"):
            assert expected in actions, actions
        assert ("riverside-clinic", "nurse.joy", "127.0.0.1", "login.failure", "", "reason=code_replayed failures=1") in rows
        # No password, code, recovery code or secret in any audit row.
        flat = repr(rows)
        for secret in ["riverside-nurse-test-pass", code, enroll["secret"], *codes]:
            assert secret not in flat
        for c in (client, other, third, fourth):
            await c.close()

    run(scenario())


def test_lockout_and_admin_unlock(workdir):
    configure(workdir, "stage auth     visitors=on twofactor=optional", "stage auth     visitors=on twofactor=optional lockout=3")
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        async def scenario():
            client = await Client.connect(hub)
            for attempt, pause in enumerate([0, 1.1, 2.1]):
                await asyncio.sleep(pause)
                reply = await login(client, "lotus-wellness", "coach.sam", password=f"wrong password {attempt}")
                assert reply["code"] == "auth_failed"
            await asyncio.sleep(4.1)
            # Locked: the right password is refused exactly like a wrong one.
            locked = await login(client, "lotus-wellness", "coach.sam")
            assert locked["type"] == "error" and locked["code"] == "auth_failed"
            # Someone else in the organisation is unaffected by the lock.
            patient, _ = await visitor(hub, "lotus-wellness")
            carehub("user", "unlock", "--org", "lotus-wellness", "--user", "coach.sam", "--data", str(hub.data))
            unlocked = await login(client, "lotus-wellness", "coach.sam", id_="after-unlock")
            assert unlocked["type"] == "session", unlocked
            actions = [row[3] for row in audit_rows(hub)]
            assert "account.locked" in actions and "user.unlocked" in actions
            await patient.close()
            await client.close()

        run(scenario())
    finally:
        assert hub.stop() == 0


def test_staff_allow_list(workdir):
    configure(workdir, "stage auth     visitors=on twofactor=optional", "stage auth     visitors=on twofactor=optional allow=10.0.0.0/8,2001:db8::/32")
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        async def scenario():
            client = await Client.connect(hub)
            refused = await login(client, "lotus-wellness", "coach.sam")
            assert refused["code"] == "auth_failed"
            assert audit_rows(hub)[-1][3:] == ("login.failure", "", "reason=address")
            # Visitors are not staff and are not held to the list; other orgs neither.
            await visitor(hub, "lotus-wellness")
            await staff(hub, "riverside-clinic", "nurse.joy")
            await client.close()

        run(scenario())
    finally:
        assert hub.stop() == 0


def test_pings_do_not_keep_a_session_alive_but_sends_do(workdir):
    configure(workdir, "stage idle     timeout=60m lifetime=12h", "stage idle     timeout=3s lifetime=1h")
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        async def scenario():
            patient, welcome = await visitor(hub, "lotus-wellness")
            room = welcome["conversation"]
            busy, session = await staff(hub, "lotus-wellness", "coach.sam")
            assert session["idleTimeoutSeconds"] == 3
            await busy.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
            idle, _ = await staff(hub, "lotus-wellness", "coach.sam")
            await idle.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")

            # For five seconds: the idle console only pings and polls the room list; the busy one writes.
            for second in range(10):
                await (await idle.ws.ping())
                await idle.send({"type": "rooms", "id": f"poll{second}"})
                if second % 2 == 0:
                    ack = await busy.request({"type": "send", "room": room, "text": f"still with you {second}", "id": f"b{second}"}, "ack")
                    assert ack["type"] == "ack", ack
                await asyncio.sleep(0.5)

            expired = await idle.recv("session_expired")
            assert expired["reason"] == "idle"
            # After expiry, nothing more reaches the idle console, and its frames are refused.
            await patient.request({"type": "send", "room": room, "text": "after expiry", "id": "p"}, "ack")
            assert (await busy.recv("message"))["text"] == "after expiry"
            refused = await idle.request({"type": "subscribe", "room": room, "id": "again"}, "subscribed")
            assert refused["code"] in ("session_expired", "unauthenticated")
            assert not [f for f in idle.inbox if f["type"] == "message" and f["text"] == "after expiry"]
            for client in (patient, busy, idle):
                await client.close()

        run(scenario())
        assert any(row[3] == "session.expired" and row[5] == "reason=idle" for row in audit_rows(hub))
    finally:
        assert hub.stop() == 0


def test_switching_hipaa_mode_on_ends_the_orgs_live_sessions(hub):
    async def scenario():
        coach, _ = await staff(hub, "lotus-wellness", "coach.sam")
        patient, _ = await visitor(hub, "lotus-wellness")
        nurse, _ = await staff(hub)

        config = hub.config
        text = config.read_text()
        lotus = text[text.index("[org lotus-wellness]"):]
        hipaa = (lotus.replace("hipaa = off", "hipaa = on")
                 .replace("twofactor=optional", "twofactor=required")
                 .replace("timeout=60m", "timeout=15m")
                 .replace("stage store", "stage encrypt\nstage store")
                 .replace("notify=preview preview_chars=60", "notify=count"))
        config.write_text(text.replace(lotus, hipaa))
        hub.signal(signal.SIGHUP)
        hub.expect_line("configuration reloaded")

        assert (await coach.recv("session_expired"))["reason"] == "hipaa_mode"
        assert (await patient.recv("session_expired"))["reason"] == "hipaa_mode"
        # Another organisation's sessions are untouched.
        rooms = await nurse.request({"type": "rooms", "id": "r"}, "rooms")
        assert rooms["type"] == "rooms"
        # Logging in again now requires the second factor.
        again = await Client.connect(hub)
        assert (await login(again, "lotus-wellness", "coach.sam"))["type"] == "enroll"
        for client in (coach, patient, nurse, again):
            await client.close()

    run(scenario())
    assert any(row[0] == "lotus-wellness" and row[3] == "hipaa.enabled" for row in audit_rows(hub))


def test_role_changes_and_disabling_are_recorded(hub):
    data = str(hub.data)
    changed = carehub("user", "set-role", "--org", "riverside-clinic", "--user", "nurse.joy", "--role", "admin", "--data", data)
    assert "role staff -> admin" in changed.stdout
    carehub("user", "disable", "--org", "riverside-clinic", "--user", "dr.admin", "--data", data)
    missing = carehub("user", "disable", "--org", "riverside-clinic", "--user", "ghost", "--data", data, check=False)
    assert missing.returncode == 1 and "ghost" in missing.stderr
    rows = audit_rows(hub)
    role = [row for row in rows if row[3] == "user.role_changed"]
    assert len(role) == 1 and role[0][4] == "nurse.joy" and role[0][5] == "old=staff new=admin" and role[0][1].startswith("cli:")
    assert any(row[3] == "user.disabled" and row[4] == "dr.admin" for row in rows)
    listing = carehub("user", "list", "--org", "riverside-clinic", "--data", data).stdout
    assert "dr.admin\tadmin\tdisabled" in listing and "nurse.joy\tadmin" in listing

    async def scenario():
        client = await Client.connect(hub)
        assert (await login(client, "riverside-clinic", "dr.admin"))["code"] == "auth_failed"
        await client.close()

    run(scenario())


def test_disabling_an_account_ends_its_live_session(hub):
    async def scenario():
        coach, _ = await staff(hub, "lotus-wellness", "coach.sam")
        carehub("user", "disable", "--org", "lotus-wellness", "--user", "coach.sam", "--data", str(hub.data))
        expired = await coach.recv("session_expired")
        assert expired["reason"] == "revoked"
        refused = await coach.request({"type": "rooms", "id": "r"}, "rooms")
        assert refused["type"] == "error"
        await coach.close()

    run(scenario())
    assert any(row[3] == "session.revoked" and row[4] == "coach.sam" and row[5] == "reason=disabled" for row in audit_rows(hub))
