"""ePHI at rest and the audit trail end to end: canaries never reach a file, key rotation under a
running hub, and `carehub audit verify` catching edits, deletions and reordering."""

import asyncio
import json
import sqlite3

from conftest import TIMEOUT, Client, Hub, carehub, staff, visitor

CANARIES = ["CANARY-alpha-4711 my husband hits me", "CANARY-bravo-0815 HIV test result", "CANARY-charlie-31337 suicidal thoughts"]
NOTE = "CANARY-delta-2718 she asked about the biopsy"


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 3))


def every_byte(hub, *extra):
    """The database, its -wal and -shm, the hub's log, and any extra blobs."""
    blobs = [path.read_bytes() for path in sorted(hub.data.glob("carehub.sqlite*"))]
    blobs.append(hub.log_text().encode())
    blobs.extend(extra)
    return b"\n".join(blobs)


def test_no_canary_reaches_any_file_and_reads_are_audited(hub):
    async def scenario():
        nurse, _ = await staff(hub)
        rooms = []
        for index, canary in enumerate(CANARIES):
            patient = await Client.connect(hub)
            profile = {"name": f"CANARYNAME{index} Doe", "email": f"canary{index}@CANARYMAIL.example", "reason": canary}
            welcome = await patient.request({"type": "hello", "org": "riverside-clinic", "profile": profile, "id": "h"}, "welcome")
            room = welcome["conversation"]
            rooms.append(room)
            subscribed = await nurse.request({"type": "subscribe", "room": room, "id": "s" + room}, "subscribed")
            assert subscribed["visitor"] == profile
            ack = await patient.request({"type": "send", "room": room, "text": canary, "id": "m"}, "ack")
            assert ack["type"] == "ack"
            assert (await nurse.recv("message"))["text"] == canary
            await patient.close()
        # The room list shows the authorised reader each visitor's name and reason (audited), never
        # the e-mail; activity frames, to every staff console, carry none of it.
        listed = await nurse.request({"type": "rooms", "id": "r", "visitors": True}, "rooms")
        names = {entry["room"]: entry.get("name") for entry in listed["rooms"]}
        assert [names[room] for room in rooms] == [f"CANARYNAME{index} Doe" for index in range(len(rooms))]
        assert "CANARYMAIL" not in json.dumps(listed)
        activity = [frame for frame in nurse.inbox if frame["type"] == "room_activity"]
        assert {frame["room"] for frame in activity} == set(rooms)
        assert {frame["event"] for frame in activity} == {"opened", "message"}
        for frame in activity:
            assert "CANARY" not in json.dumps(frame)
        # A second reader opens the history: decrypted for her, audited as a read.
        admin, _ = await staff(hub, user="dr.admin")
        history = await admin.request({"type": "subscribe", "room": rooms[0], "id": "h"}, "subscribed")
        assert [entry["text"] for entry in history["history"]] == [CANARIES[0]]
        # The front desk: a claim, a hand-over note (which reaches the colleague and nothing else),
        # availability. No frame about them but the note to its reader carries patient text.
        await nurse.request({"type": "claim", "room": rooms[1], "id": "c"}, "claimed")
        await nurse.request({"type": "transfer", "room": rooms[1], "to": "dr.admin", "note": NOTE, "id": "t"}, "transferred")
        assert (await admin.recv("transferred"))["note"] == NOTE
        assert (await admin.request({"type": "subscribe", "room": rooms[1], "id": "h2"}, "subscribed"))["handoff"]["note"] == NOTE
        await nurse.request({"type": "presence", "state": "away", "id": "p"}, "presence")
        await admin.request({"type": "team", "id": "team"}, "team")
        pushed = [frame for frame in nurse.inbox + admin.inbox if frame["type"] in ("room_activity", "presence", "transferred", "queue")]
        assert {"claimed", "transferred"} <= {frame.get("event") for frame in pushed}
        for frame in pushed:
            assert "CANARY" not in json.dumps(frame)
        await nurse.close()
        await admin.close()
        return rooms

    rooms = run(scenario())
    export = carehub("audit", "export", "--data", str(hub.data)).stdout
    who = carehub("audit", "who-read", "--conversation", rooms[0], "--data", str(hub.data)).stdout
    what = carehub("audit", "what-read", "--user", "dr.admin", "--data", str(hub.data)).stdout
    assert hub.stop() == 0
    everything = every_byte(hub, export.encode(), who.encode(), what.encode())
    for canary in CANARIES + [NOTE, "CANARYNAME", "CANARYMAIL"]:
        assert canary.encode() not in everything
        assert canary.split()[0].encode() not in everything

    readers = [json.loads(line) for line in who.splitlines()]
    assert {(entry["action"], entry["actor"]) for entry in readers} >= {("phi.delivered", "visitor"), ("phi.read", "dr.admin")}
    assert any(entry["target"] == "rooms" and entry["actor"] == "nurse.joy" for entry in readers)
    assert any("readers=nurse.joy" in entry["detail"] for entry in readers if entry["action"] == "phi.delivered")
    listings = [json.loads(line) for line in export.splitlines() if '"phi.read"' in line and '"rooms"' in line]
    assert [(entry["actor"], entry["target"]) for entry in listings] == [("nurse.joy", "rooms")]
    assert listings[0]["detail"].startswith("profiles=3 rooms=") and all(room in listings[0]["detail"] for room in rooms)
    read = [json.loads(line) for line in what.splitlines()]
    assert [entry["target"] for entry in read] == [rooms[0], rooms[1]]
    for line in export.splitlines():
        event = json.loads(line)
        assert set(event) == {"id", "at", "org", "actor", "address", "action", "target", "detail"}
    assert "the audit chain holds" in carehub("audit", "verify", "--data", str(hub.data)).stdout


def test_key_rotation_under_a_running_hub(hub):
    async def scenario(texts, check_history_of=None):
        nurse, _ = await staff(hub)
        if check_history_of:
            history = await nurse.request({"type": "subscribe", "room": check_history_of, "id": "h"}, "subscribed")
            assert [entry["text"] for entry in history["history"]] == texts
            await nurse.close()
            return check_history_of
        patient, welcome = await visitor(hub)
        room = welcome["conversation"]
        for index, text in enumerate(texts):
            assert (await patient.request({"type": "send", "room": room, "text": text, "id": f"m{index}"}, "ack"))["type"] == "ack"
        await patient.close()
        await nurse.close()
        return room

    room = run(scenario(["before rotation one", "before rotation two"]))
    rotated = carehub("keys", "rotate", "--org", "riverside-clinic", "--data", str(hub.data))
    assert "key-encryption key v2 active" in rotated.stdout and "retired v1" in rotated.stdout
    status = carehub("keys", "status", "--org", "riverside-clinic", "--data", str(hub.data)).stdout.splitlines()
    assert status == ["riverside-clinic\tv1\tretired", "riverside-clinic\tv2\tactive"]
    with sqlite3.connect(hub.data / "carehub.sqlite") as db:
        assert db.execute("SELECT wrapped FROM org_keks WHERE org = 'riverside-clinic' AND version = 1").fetchone() == (None,)
        assert {row[0] for row in db.execute("SELECT kek_version FROM data_keys")} == {2}
    # The running hub still reads the history, and after a restart too.
    run(scenario(["before rotation one", "before rotation two"], check_history_of=room))
    assert hub.stop() == 0
    restarted = Hub(hub.workdir, hub.config).start()
    try:
        hub = restarted
        run(scenario(["before rotation one", "before rotation two"], check_history_of=room))
    finally:
        assert restarted.stop() == 0
    assert any(json.loads(line)["action"] == "keys.rotated" for line in carehub("audit", "export", "--data", str(hub.data)).stdout.splitlines())


def test_audit_verify_names_edited_deleted_and_reordered_rows(hub):
    async def scenario():
        for _ in range(3):
            client, _ = await staff(hub, "lotus-wellness", "coach.sam")
            await client.close()

    run(scenario())
    assert hub.stop() == 0
    data = str(hub.data)
    database = hub.data / "carehub.sqlite"
    assert carehub("audit", "verify", "--data", data).returncode == 0
    with sqlite3.connect(database) as db:
        count = db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
        assert count >= 3
        original = db.execute("SELECT * FROM audit_events WHERE id = 2").fetchone()

    def tamper(sql):
        with sqlite3.connect(database) as db:
            db.executescript(sql)
        result = carehub("audit", "verify", "--data", data, check=False)
        assert result.returncode == 1, result.stdout
        return result.stderr

    assert "broken at event 2" in tamper("UPDATE audit_events SET address = '203.0.113.9' WHERE id = 2")
    with sqlite3.connect(database) as db:
        db.execute("UPDATE audit_events SET address = ? WHERE id = 2", (original[4],))
    assert carehub("audit", "verify", "--data", data).returncode == 0

    assert "event 2 is missing" in tamper("CREATE TABLE keep AS SELECT * FROM audit_events WHERE id = 2; DELETE FROM audit_events WHERE id = 2")
    with sqlite3.connect(database) as db:
        db.executescript("INSERT INTO audit_events SELECT * FROM keep; DROP TABLE keep")
    assert carehub("audit", "verify", "--data", data).returncode == 0

    assert "broken at event 1" in tamper("UPDATE audit_events SET id = -1 WHERE id = 1; UPDATE audit_events SET id = 1 WHERE id = 2; UPDATE audit_events SET id = 2 WHERE id = -1")
