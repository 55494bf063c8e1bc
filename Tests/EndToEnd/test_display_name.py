"""Staff display names: set on `carehub user add` and through the admin API, shown to patients
as `fromName` while `from` stays the login."""

import asyncio
import shutil
import sqlite3

import pytest

from conftest import REPO, TIMEOUT, USERS, Hub, carehub, local_exports, staff, visitor

RIVERSIDE = "riverside-clinic"


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 3))


@pytest.fixture
def named_hub(tmp_path):
    """The test accounts, nurse.joy added with the display name "Joy Rivera"."""
    config = tmp_path / "pipeline.conf"
    shutil.copy(REPO / "pipeline.conf", config)
    local_exports(config, tmp_path)
    for org, user, role, password in USERS:
        named = ["--display-name", "Joy Rivera"] if user == "nurse.joy" else []
        carehub("user", "add", "--org", org, "--user", user, "--role", role, *named,
                "--data", str(tmp_path / "data"), "--config", str(config), stdin=password + "\n")
    running = Hub(tmp_path, config).start()
    yield running
    running.stop()


async def admin(client, op, **fields):
    return await client.request({"type": "admin", "op": op, "id": op, **fields}, "admin")


def test_a_staff_reply_reaches_the_visitor_with_the_display_name_and_the_login(named_hub):
    hub = named_hub
    listing = carehub("user", "list", "--org", RIVERSIDE, "--data", str(hub.data)).stdout
    assert "nurse.joy\tstaff\tno-2fa\tJoy Rivera" in listing.splitlines(), listing

    async def scenario():
        nurse, _ = await staff(hub)
        patient, welcome = await visitor(hub)
        room = welcome["conversation"]
        await nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")

        await patient.request({"type": "send", "room": room, "text": "Hello?", "id": "m1"}, "ack")
        asked = await nurse.recv("message")
        assert asked["from"] == "visitor" and "fromName" not in asked, asked

        await nurse.send({"type": "typing", "room": room})
        typing = await patient.recv("typing")
        assert typing == {"type": "typing", "room": room, "from": "nurse.joy", "fromName": "Joy Rivera"}, typing

        await nurse.request({"type": "send", "room": room, "text": "Hi, I am Joy.", "id": "m2"}, "ack")
        answer = await patient.recv("message")
        assert answer["from"] == "nurse.joy" and answer["fromName"] == "Joy Rivera", answer
        assert answer["text"] == "Hi, I am Joy."

        # The history a returning visitor receives names the staff member the same way.
        await patient.close()
        back, resumed = await visitor(hub, token=welcome["token"])
        names = [(entry["from"], entry.get("fromName")) for entry in resumed["history"]]
        assert names == [("visitor", None), ("nurse.joy", "Joy Rivera")], resumed["history"]
        for client in (nurse, back):
            await client.close()

    run(scenario())


def test_admins_set_display_names_which_are_checked_and_audited(named_hub):
    hub = named_hub

    async def scenario():
        boss, _ = await staff(hub, RIVERSIDE, "dr.admin")
        listed = await admin(boss, "users.list")
        shown = {user["user"]: user.get("displayName") for user in listed["result"]["users"]}
        assert shown == {"dr.admin": None, "nurse.joy": "Joy Rivera"}, listed

        for bad in ("", "   ", "\u202e\t", "x" * 65):
            refused = await admin(boss, "users.set_display_name", user="nurse.joy", displayName=bad)
            assert refused["type"] == "error" and refused["code"] == "invalid_field", refused
            assert "displayName" in refused["message"], refused
        refused = await admin(boss, "users.add", user="nurse.kim", role="staff", password="kim-initial-passphrase", displayName="")
        assert refused["code"] == "invalid_field", refused
        missing = await admin(boss, "users.set_display_name", user="ghost", displayName="Nobody")
        assert missing["code"] == "not_found", missing

        changed = await admin(boss, "users.set_display_name", user="nurse.joy", displayName="  Joy\tR. Rivera ")
        assert changed["type"] == "admin", changed
        shown = {user["user"]: user.get("displayName") for user in changed["result"]["users"]}
        assert shown["nurse.joy"] == "Joy R. Rivera", changed
        added = await admin(boss, "users.add", user="nurse.kim", role="staff", password="kim-initial-passphrase",
                            displayName="Kim Lee")
        shown = {user["user"]: user.get("displayName") for user in added["result"]["users"]}
        assert shown["nurse.kim"] == "Kim Lee", added

        # A login after the change carries the new name.
        nurse, _ = await staff(hub)
        patient, welcome = await visitor(hub)
        room = welcome["conversation"]
        await nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
        await nurse.request({"type": "send", "room": room, "text": "Hello", "id": "m"}, "ack")
        assert (await patient.recv("message"))["fromName"] == "Joy R. Rivera"
        # Cleared, the account is shown by its login again.
        cleared = await admin(boss, "users.set_display_name", user="nurse.kim", displayName=None)
        assert "displayName" not in next(user for user in cleared["result"]["users"] if user["user"] == "nurse.kim"), cleared
        for client in (boss, nurse, patient):
            await client.close()

    run(scenario())
    with sqlite3.connect(hub.data / "carehub.sqlite") as db:
        rows = db.execute(
            "SELECT actor, action, target, detail FROM audit_events WHERE action = 'user.display_name_changed' ORDER BY id").fetchall()
    assert rows == [("dr.admin", "user.display_name_changed", "nurse.joy", 'new="Joy R. Rivera"'),
                    ("dr.admin", "user.display_name_changed", "nurse.kim", "cleared")], rows


def test_the_command_line_sets_a_display_name_and_audits_it(named_hub):
    hub = named_hub
    done = carehub("user", "set-display-name", "--org", RIVERSIDE, "--user", "dr.admin",
                   "--display-name", "Dr Ada Admin", "--data", str(hub.data))
    assert "Dr Ada Admin" in done.stdout, done.stdout
    empty = carehub("user", "set-display-name", "--org", RIVERSIDE, "--user", "dr.admin",
                    "--display-name", " ", "--data", str(hub.data), check=False)
    assert empty.returncode != 0 and "--display-name" in empty.stderr, empty.stderr
    neither = carehub("user", "set-display-name", "--org", RIVERSIDE, "--user", "dr.admin", "--data", str(hub.data), check=False)
    assert neither.returncode != 0 and "--clear" in neither.stderr, neither.stderr
    with sqlite3.connect(hub.data / "carehub.sqlite") as db:
        rows = db.execute(
            "SELECT action, target, detail FROM audit_events WHERE action = 'user.display_name_changed'").fetchall()
        name = db.execute("SELECT display_name FROM users WHERE name = 'dr.admin'").fetchone()
    assert rows == [("user.display_name_changed", "dr.admin", 'new="Dr Ada Admin"')] and name == ("Dr Ada Admin",), rows
    cleared = carehub("user", "set-display-name", "--org", RIVERSIDE, "--user", "dr.admin", "--clear", "--data", str(hub.data))
    assert "by the login name" in cleared.stdout, cleared.stdout
    with sqlite3.connect(hub.data / "carehub.sqlite") as db:
        assert db.execute("SELECT display_name FROM users WHERE name = 'dr.admin'").fetchone() == (None,)
        assert db.execute("SELECT detail FROM audit_events WHERE action = 'user.display_name_changed' ORDER BY id DESC").fetchone() == ("cleared",)
