"""The audit trail against someone who can write the database: keyed chain, signed heads at every
commit, a head anchored outside the database, trails of older versions, and command-line changes
audited in the operating system's name for the operator."""

import asyncio
import hashlib
import hmac
import json
import os
import pwd
import sqlite3
import stat
import struct
import subprocess

from conftest import BIN, REPO, TIMEOUT, Hub, carehub, staff

OPERATOR = "cli:" + pwd.getpwuid(os.getuid()).pw_name


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 3))


def logins(hub, count=3):
    async def scenario():
        for _ in range(count):
            client, _ = await staff(hub, "lotus-wellness", "coach.sam")
            await client.close()

    run(scenario())


def verify(data, *extra):
    return carehub("audit", "verify", "--data", str(data), *extra, check=False)


def unkeyed(previous, row):
    """The chain hash of versions before the keyed chain: SHA-256 over the previous hash and the
    length-prefixed id, time, org, actor, address, action, target, detail."""
    id_, at, org, actor, address, action, target, detail = row
    data = bytearray(previous)
    for field in [str(id_), str(int(at)), org, actor, address, action, target, detail]:
        encoded = field.encode()
        data += struct.pack(">I", len(encoded)) + encoded
    return hashlib.sha256(bytes(data)).digest()


def audit_key(data):
    """HKDF-SHA256 of the master key, as the hub derives the key that signs checkpoints."""
    master = (data / "master.key").read_bytes()
    prk = hmac.new(b"carehub.audit", master, hashlib.sha256).digest()
    return hmac.new(prk, b"checkpoint-hmac.v1" + b"\x01", hashlib.sha256).digest()


ROW = "SELECT id, at, org, actor, address, action, target, detail FROM audit_events"


def test_an_untouched_trail_holds_and_the_anchor_catches_a_rollback(workdir):
    anchor = workdir / "anchor" / "audit-heads"
    anchor.parent.mkdir()
    hub = Hub(workdir, workdir / "pipeline.conf")
    hub.extra_args = ["--audit-anchor", str(anchor)]
    hub.start()
    logins(hub)
    assert hub.stop() == 0
    data = hub.data
    assert stat.S_IMODE(anchor.stat().st_mode) == 0o600
    last = anchor.read_text().splitlines()[-1]
    assert last.startswith("audit head seq=") and " hash=" in last and " sig=" in last
    assert last in hub.log_text()
    with sqlite3.connect(data / "carehub.sqlite") as db:
        count = db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
        assert db.execute("SELECT MAX(seq) FROM audit_heads").fetchone()[0] == count
    assert f"seq={count} " in last
    assert verify(data, "--head-file", str(anchor)).returncode == 0
    assert verify(data, "--head", last).returncode == 0

    # A consistent rollback: the last events and their heads gone. The rest is a valid trail...
    with sqlite3.connect(data / "carehub.sqlite") as db:
        db.execute("DELETE FROM audit_events WHERE id > ?", (count - 2,))
        db.execute("DELETE FROM audit_heads WHERE seq > ?", (count - 2,))
    assert verify(data).returncode == 0
    # ...that the head kept elsewhere refuses.
    result = verify(data, "--head-file", str(anchor))
    assert result.returncode == 1
    assert f"before the anchored head at event {count}" in result.stderr
    assert verify(data, "--head", last).returncode == 1


def test_tampering_without_the_key_is_named(hub):
    logins(hub)
    assert hub.stop() == 0
    data = hub.data
    database = data / "carehub.sqlite"
    with sqlite3.connect(database) as db:
        count = db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
    assert count >= 4
    backup = (workdir_copy := data.parent / "backup.sqlite")
    with sqlite3.connect(database) as db, sqlite3.connect(workdir_copy) as copy:
        db.backup(copy)

    def restore():
        with sqlite3.connect(backup) as source, sqlite3.connect(database) as db:
            source.backup(db)
        assert verify(data).returncode == 0

    def tamper(sql, *parameters):
        with sqlite3.connect(database) as db:
            db.execute(sql, parameters)

    # The last events deleted under their heads.
    tamper("DELETE FROM audit_events WHERE id > ?", count - 2)
    result = verify(data)
    assert result.returncode == 1 and f"a signed head covers event {count - 1}, which is gone" in result.stderr
    restore()

    # An event edited and the chain recomputed from it with the unkeyed hash, later heads deleted.
    with sqlite3.connect(database) as db:
        db.execute("UPDATE audit_events SET actor = 'mallory' WHERE id = 2")
        previous = db.execute("SELECT hash FROM audit_events WHERE id = 1").fetchone()[0]
        for row in db.execute(ROW + " WHERE id >= 2 ORDER BY id").fetchall():
            previous = unkeyed(previous, row)
            db.execute("UPDATE audit_events SET hash = ? WHERE id = ?", (previous, row[0]))
        db.execute("DELETE FROM audit_heads WHERE seq >= 2")
    result = verify(data)
    assert result.returncode == 1 and "broken at event 2" in result.stderr
    restore()

    # Every head deleted.
    tamper("DELETE FROM audit_heads")
    result = verify(data)
    assert result.returncode == 1 and "broken at event 1" in result.stderr
    restore()

    # An event appended after the last head, even with a well-formed unkeyed hash.
    with sqlite3.connect(database) as db:
        row = list(db.execute(ROW + " WHERE id = ?", (count,)).fetchone())
        previous = db.execute("SELECT hash FROM audit_events WHERE id = ?", (count,)).fetchone()[0]
        row[0] = count + 1
        db.execute("INSERT INTO audit_events (id, at, org, actor, address, action, target, detail, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (*row, unkeyed(previous, row)))
    result = verify(data)
    assert result.returncode == 1 and f"broken at event {count + 1}" in result.stderr
    restore()


def test_a_trail_of_an_older_version_still_verifies_and_continues_keyed(workdir):
    data = workdir / "data"
    database = data / "carehub.sqlite"
    # Rewrite the trail as versions before the keyed chain wrote it: unkeyed rows, a checkpoint
    # signed with the audit key at the end, no heads.
    key = audit_key(data)
    with sqlite3.connect(database) as db:
        rows = db.execute(ROW + " ORDER BY id").fetchall()
        assert len(rows) == 3
        db.execute("DELETE FROM audit_heads")
        previous = bytes(32)
        for row in rows:
            previous = unkeyed(previous, row)
            db.execute("UPDATE audit_events SET hash = ? WHERE id = ?", (previous, row[0]))
        mac = hmac.new(key, f"carehub.audit.checkpoint.v1|{len(rows)}|".encode() + previous, hashlib.sha256).digest()
        db.execute("INSERT INTO audit_checkpoints (last_event_id, hash, mac, at) VALUES (?, ?, ?, 0)", (len(rows), previous, mac))
    result = verify(data)
    assert result.returncode == 0 and "3 events, 1 signed heads" in result.stdout, result.stderr
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    logins(hub, 1)
    assert hub.stop() == 0
    assert verify(data).returncode == 0
    with sqlite3.connect(database) as db:
        assert {row[0] for row in db.execute("SELECT keyed_from FROM audit_heads")} == {4}
        # Claiming the keyed part is old format too: drop the heads, re-chain unkeyed.
        previous = db.execute("SELECT hash FROM audit_events WHERE id = 3").fetchone()[0]
        for row in db.execute(ROW + " WHERE id > 3 ORDER BY id").fetchall():
            previous = unkeyed(previous, row)
            db.execute("UPDATE audit_events SET hash = ? WHERE id = ?", (previous, row[0]))
        db.execute("DELETE FROM audit_heads")
    result = verify(data)
    assert result.returncode == 1 and "event 4 and later are not covered by a signed head" in result.stderr


def test_command_line_changes_are_audited_in_the_real_account_name(workdir):
    data = str(workdir / "data")
    config = str(workdir / "pipeline.conf")
    spoofed = {**os.environ, "SUDO_USER": "mallory", "USER": "mallory", "LOGNAME": "mallory"}

    def cli(*args, stdin=None):
        result = subprocess.run([BIN, *args, "--data", data], input=stdin, capture_output=True, text=True, timeout=120, cwd=REPO, env=spoofed)
        assert result.returncode == 0, result.stderr
        return result

    cli("user", "add", "--org", "riverside-clinic", "--user", "nurse.kim", "--role", "staff", "--config", config,
        stdin="a long passphrase for kim\n")
    for command in [["disable"], ["enable"], ["set-role", "--role", "admin"], ["reset-2fa"], ["unlock"]]:
        cli("user", command[0], "--org", "riverside-clinic", "--user", "nurse.kim", *command[1:])
    cli("keys", "rotate", "--org", "riverside-clinic")
    events = [json.loads(line) for line in carehub("audit", "export", "--data", data).stdout.splitlines()]
    kim = [event for event in events if event["target"] == "nurse.kim"]
    assert [event["action"] for event in kim] == ["user.created", "user.disabled", "user.enabled", "user.role_changed", "user.2fa_reset", "user.unlocked"]
    assert kim[0]["detail"] == "role=staff" and kim[3]["detail"] == "old=staff new=admin"
    rotated = [event for event in events if event["action"] == "keys.rotated"]
    assert len(rotated) == 1
    for event in kim + rotated:
        assert event["actor"] == OPERATOR and event["address"] == "local", event
    assert all("mallory" not in json.dumps(event) for event in events)
    # The accounts the fixture added are audited too, and the passphrase is nowhere.
    assert {event["target"] for event in events if event["action"] == "user.created"} == {"nurse.joy", "dr.admin", "coach.sam", "nurse.kim"}
    assert b"a long passphrase for kim" not in (workdir / "data" / "carehub.sqlite").read_bytes()
    assert verify(data).returncode == 0
