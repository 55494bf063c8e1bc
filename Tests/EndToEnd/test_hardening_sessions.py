"""Every end of a staff session leaves exactly one audit event, whoever ends it: a logout, the
idle expiry, or the console closing its socket (before or after its idle timeout); and an admin
sees only their own organisation's kept pipeline versions."""

import asyncio
import sqlite3
import time

from conftest import TIMEOUT, Client, carehub, login, staff

ENDINGS = ("logout", "session.expired", "session.ended", "session.revoked")


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 3))


def endings(hub, user):
    with sqlite3.connect(hub.data / "carehub.sqlite") as db:
        rows = db.execute("SELECT action, detail FROM audit_events WHERE actor = ? ORDER BY id", (user,)).fetchall()
    return [row for row in rows if row[0] in ENDINGS]


def wait_for(predicate, what):
    deadline = time.time() + TIMEOUT
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_each_way_a_staff_session_ends_is_audited_once(hub):
    async def closed_by_the_console():
        nurse, _ = await staff(hub)
        await nurse.close()

    run(closed_by_the_console())
    wait_for(lambda: endings(hub, "nurse.joy"), "the disconnect's audit event")
    assert endings(hub, "nurse.joy") == [("session.ended", "reason=disconnect")]

    async def logged_out():
        nurse, _ = await staff(hub)
        assert (await nurse.request({"type": "logout", "id": "o"}, "logged_out"))["type"] == "logged_out"
        await nurse.close()

    run(logged_out())
    time.sleep(0.5)  # let a duplicate, if any, reach the database
    assert endings(hub, "nurse.joy") == [("session.ended", "reason=disconnect"), ("logout", "")]


def test_a_console_that_locks_and_closes_itself_leaves_a_session_expired_event(workdir):
    from conftest import Hub
    config = workdir / "pipeline.conf"
    config.write_text(config.read_text().replace("stage idle     timeout=60m lifetime=12h", "stage idle     timeout=2s lifetime=1h"))
    hub = Hub(workdir, config).start()
    try:
        async def scenario():
            coach, session = await staff(hub, "lotus-wellness", "coach.sam")
            assert session["idleTimeoutSeconds"] == 2
            # The console's own timer locks it and it closes the socket; the hub's tick may or
            # may not have expired the session first: either way one event says so.
            expired = await coach.recv("session_expired", timeout=TIMEOUT)
            assert expired["reason"] == "idle"
            await coach.close()
        run(scenario())
        wait_for(lambda: endings(hub, "coach.sam"), "the expiry's audit event")
        time.sleep(0.5)
        assert endings(hub, "coach.sam") == [("session.expired", "reason=idle")]
    finally:
        hub.stop()


def test_an_admin_sees_only_their_own_organisations_kept_versions(hub):
    carehub("user", "add", "--org", "lotus-wellness", "--user", "lotus.admin", "--role", "admin",
            "--data", str(hub.data), "--config", str(hub.config), stdin="lotus-admin-test-pass\n")

    async def scenario():
        boss, _ = await staff(hub, "riverside-clinic", "dr.admin")
        current = await boss.request({"type": "admin", "op": "pipeline.get", "id": "g"}, "admin")
        text = current["result"]["text"].replace("history=200", "history=150")
        saved = await boss.request({"type": "admin", "op": "pipeline.replace", "id": "r", "text": text,
                                    "base": current["result"]["version"]}, "admin")
        assert saved["type"] == "admin", saved
        assert len(saved["result"]["versions"]) == 1 and "dr.admin" in saved["result"]["versions"][0]

        other = await Client.connect(hub)
        reply = await login(other, "lotus-wellness", "lotus.admin", password="lotus-admin-test-pass")
        assert reply["type"] == "enroll", reply
        from conftest import AUTHENTICATOR
        key = (hub.data, "lotus-wellness", "lotus.admin")
        AUTHENTICATOR.secrets[key] = reply["secret"]
        reply = await login(other, "lotus-wellness", "lotus.admin", password="lotus-admin-test-pass", code=AUTHENTICATOR.code(key))
        assert reply["type"] == "session", reply
        theirs = await other.request({"type": "admin", "op": "pipeline.get", "id": "g"}, "admin")
        assert theirs["result"]["versions"] == []
        assert "dr.admin" not in str(theirs["result"]) and "riverside" not in str(theirs["result"])
        for client in (boss, other):
            await client.close()
    run(scenario())
