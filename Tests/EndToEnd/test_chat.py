"""The hub end to end: a real `carehub serve`, real WebSocket clients, real SQLite files."""

import asyncio
import json
import signal
import urllib.error
import urllib.request

import pytest

from conftest import TIMEOUT, Client, Hub, carehub, staff, visitor

CANARY = "CANARY-7f3a9 patient says: my chest hurts since Tuesday"


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 3))


def database_bytes(hub):
    """Every byte the hub has on disk for its database: the file, its WAL and shared memory."""
    blobs = b""
    for path in sorted(hub.data.glob("carehub.sqlite*")):
        blobs += path.read_bytes()
    return blobs


def test_static_index_page_is_served(hub):
    with urllib.request.urlopen(f"http://127.0.0.1:{hub.port}/", timeout=TIMEOUT) as response:
        body = response.read().decode()
    assert response.status == 200
    assert "CareHub" in body
    # Pages go out with a strict policy: no inline script, no framing by other sites.
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    with urllib.request.urlopen(f"http://127.0.0.1:{hub.port}/carehub.css", timeout=TIMEOUT) as response:
        assert response.headers["Content-Type"].startswith("text/css")
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://127.0.0.1:{hub.port}/no-such-page.html", timeout=TIMEOUT)
    assert missing.value.code == 404


def test_visitor_and_staff_chat_then_end_purges_the_transcript(hub):
    async def scenario():
        nurse, session = await staff(hub)
        assert session["idleTimeoutSeconds"] == 900
        assert session["role"] == "staff"

        patient, welcome = await visitor(hub)
        room = welcome["conversation"]
        assert len(welcome["token"]) >= 26 and welcome["history"] == []

        opened = await nurse.recv("room_opened")
        assert opened["room"] == room

        rooms = await nurse.request({"type": "rooms", "id": "r"}, "rooms")
        assert room in [entry["room"] for entry in rooms["rooms"]]

        subscribed = await nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
        # What ending it will do, from the shipped purge stage: export encrypted, then erase.
        on_end = {"kind": "export_file", "text": "The transcript will be exported to the clinic's records "
                  "(encrypted files on the hub's host) and then erased from CareHub."}
        assert subscribed == {"type": "subscribed", "id": "s", "room": room, "ended": False, "history": [], "onEnd": on_end}

        # Typing is relayed to the room without a reply.
        await patient.send({"type": "typing", "room": room})
        assert await nurse.recv("typing") == {"type": "typing", "room": room, "from": "visitor"}

        ack = await patient.request({"type": "send", "room": room, "text": CANARY, "id": "m1"}, "ack")
        assert ack["id"] == "m1" and ack["seq"] >= 1
        delivered = await nurse.recv("message")
        assert delivered["text"] == CANARY and delivered["from"] == "visitor" and delivered["seq"] == ack["seq"]

        reply = await nurse.request({"type": "send", "room": room, "text": "Please call 911 if it is severe.", "id": "m2"}, "ack")
        assert reply["seq"] > ack["seq"]
        answer = await patient.recv("message")
        assert answer["from"] == "nurse.joy" and answer["text"] == "Please call 911 if it is severe."

        # HIPAA org: the text is encrypted before it reaches the disk.
        assert CANARY.encode() not in database_bytes(hub)

        ended = await nurse.request({"type": "end", "room": room, "id": "e"}, "ended")
        assert ended == {"type": "ended", "id": "e", "room": room}
        assert (await patient.recv("ended"))["room"] == room

        late = await patient.request({"type": "send", "room": room, "text": "hello?", "id": "late"}, "ack")
        assert late["type"] == "error" and late["code"] == "conversation_ended"

        # The purge stage deleted the transcript; a later reader sees none of it.
        again = await nurse.request({"type": "subscribe", "room": room, "id": "s2"}, "subscribed")
        assert again["ended"] is True and again["history"] == []

        # The ended conversation's reconnect token no longer reaches it.
        resumed = await Client.connect(hub)
        refused = await resumed.request({"type": "hello", "org": "riverside-clinic", "token": welcome["token"], "id": "h2"}, "welcome")
        assert refused["type"] == "error" and refused["code"] == "auth_failed"
        for client in (nurse, patient, resumed):
            await client.close()

    run(scenario())


def test_history_is_served_after_a_restart(workdir):
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    texts = ["first message", "second: ünïcödé ✓", 'third with "quotes" and \\ backslash']

    async def before():
        rooms = {}
        for org in ("lotus-wellness", "riverside-clinic"):
            patient, welcome = await visitor(hub, org)
            for index, text in enumerate(texts):
                ack = await patient.request({"type": "send", "room": welcome["conversation"], "text": text, "id": f"m{index}"}, "ack")
                assert ack["type"] == "ack"
            rooms[org] = welcome
            await patient.close()
        return rooms

    rooms = run(before())
    assert hub.stop() == 0, hub.log_text()
    assert "CareHub stopped" in "".join(iter_lines(hub))

    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        async def after():
            for org, user in (("lotus-wellness", "coach.sam"), ("riverside-clinic", "nurse.joy")):
                room = rooms[org]["conversation"]
                reader, _ = await staff(hub, org, user)
                listing = await reader.request({"type": "rooms", "id": "r"}, "rooms")
                assert room in [entry["room"] for entry in listing["rooms"]]
                subscribed = await reader.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
                assert [entry["text"] for entry in subscribed["history"]] == texts
                assert [entry["from"] for entry in subscribed["history"]] == ["visitor"] * 3
                seqs = [entry["seq"] for entry in subscribed["history"]]
                assert seqs == sorted(seqs) and len(set(seqs)) == 3

                # The visitor resumes with its token and sees the same history; new messages continue the sequence.
                patient, welcome = await visitor(hub, org, token=rooms[org]["token"])
                assert welcome["conversation"] == room
                assert [entry["text"] for entry in welcome["history"]] == texts
                ack = await patient.request({"type": "send", "room": room, "text": "after restart", "id": "n"}, "ack")
                assert ack["seq"] > max(seqs)
                assert (await reader.recv("message"))["text"] == "after restart"
                await patient.close()
                await reader.close()

        run(after())
    finally:
        hub.stop()


def iter_lines(hub):
    lines = []
    while not hub.lines.empty():
        line = hub.lines.get()
        if line is not None:
            lines.append(line)
    return lines


def test_bad_frames_get_precise_errors_and_nobody_else_is_affected(hub):
    async def scenario():
        # A working pair that must keep working throughout.
        nurse, _ = await staff(hub)
        patient, welcome = await visitor(hub)
        room = welcome["conversation"]
        await nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")

        async def pair_still_works(label):
            ack = await patient.request({"type": "send", "room": room, "text": label, "id": label}, "ack")
            assert ack["type"] == "ack", ack
            assert (await nurse.recv("message"))["text"] == label

        bad = await Client.connect(hub)
        cases = [
            ("not json at all", None, "bad_json"),
            ("[1, 2, 3]", None, "bad_json"),
            (json.dumps({"type": "teleport", "id": "t1"}), "t1", "unknown_type"),
            (json.dumps({"id": "t2"}), "t2", "invalid_field"),
            (json.dumps({"type": "send", "id": "t3", "text": "x"}), "t3", "invalid_field"),
            (json.dumps({"type": "send", "id": "t4", "room": room, "text": "x"}), "t4", "unauthenticated"),
            (json.dumps({"type": "hello", "org": "no-such-org", "id": "t5"}), "t5", "unknown_org"),
            (json.dumps({"type": "login", "org": "riverside-clinic", "user": "nurse.joy", "password": "wrong", "id": "t6"}), "t6", "auth_failed"),
            (json.dumps({"type": "login", "org": "riverside-clinic", "user": "nobody", "password": "wrong", "id": "t7"}), "t7", "auth_failed"),
            ("x" * 70_000, None, "too_large"),
            (b"\x00\x01binary", None, "binary_frame"),
        ]
        messages = {}
        for frame, frame_id, code in cases:
            await bad.send(frame)
            error = await bad.recv()
            assert error["type"] == "error", (frame[:40], error)
            assert error["code"] == code, (frame[:40], error)
            assert error.get("id") == frame_id
            assert error["message"]
            messages[code] = error["message"]
            await pair_still_works(f"after-{code}-{frame_id}")
        # Wrong password and unknown user are indistinguishable.
        assert "nobody" not in messages["auth_failed"]

        # The same connection still works after every error: it becomes a visitor...
        own = await bad.request({"type": "hello", "org": "riverside-clinic", "id": "ok"}, "welcome")
        assert own["type"] == "welcome"
        # ...which may not subscribe, nor write into another visitor's room.
        forbidden = await bad.request({"type": "subscribe", "room": room, "id": "f1"}, "subscribed")
        assert forbidden["code"] == "forbidden"
        forbidden = await bad.request({"type": "send", "room": room, "text": "intrusion", "id": "f2"}, "ack")
        assert forbidden["code"] == "forbidden"
        again = await bad.request({"type": "hello", "org": "riverside-clinic", "id": "twice"}, "welcome")
        assert again["code"] == "already_authenticated"
        await pair_still_works("at-the-end")
        for client in (bad, nurse, patient):
            await client.close()

    run(scenario())


def test_sighup_reloads_config_live_and_keeps_it_when_invalid(hub):
    config = hub.config

    async def scenario():
        coach, session = await staff(hub, "lotus-wellness", "coach.sam")
        assert session["idleTimeoutSeconds"] == 3600
        patient, welcome = await visitor(hub, "lotus-wellness")
        room = welcome["conversation"]
        await coach.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")

        config.write_text(config.read_text().replace("timeout=60m", "timeout=30m"))
        hub.signal(signal.SIGHUP)
        hub.expect_line("configuration reloaded")
        _, fresh = await staff(hub, "lotus-wellness", "coach.sam")
        assert fresh["idleTimeoutSeconds"] == 1800

        # Connections made before the reload keep working.
        ack = await patient.request({"type": "send", "room": room, "text": "still here", "id": "a"}, "ack")
        assert ack["type"] == "ack"
        assert (await coach.recv("message"))["text"] == "still here"

        good = config.read_text()
        config.write_text(good.replace("stage encrypt  cipher=aes-256-gcm\n", ""))
        hub.signal(signal.SIGHUP)
        await asyncio.sleep(0)  # let the signal arrive; the check below waits on the log
        deadline = asyncio.get_event_loop().time() + TIMEOUT
        while "must run stage 'encrypt'" not in hub.log_text():
            assert asyncio.get_event_loop().time() < deadline, hub.log_text()
            await asyncio.sleep(0.05)
        assert f"{config}:" in hub.log_text()
        # The configuration in force is unchanged: the HIPAA org still encrypts and idles at 15 minutes.
        _, nurse = await staff(hub)
        assert nurse["idleTimeoutSeconds"] == 900
        ack = await patient.request({"type": "send", "room": room, "text": "after refused reload", "id": "b"}, "ack")
        assert ack["type"] == "ack"

    run(scenario())


def test_config_check_summarises_and_locates_errors(tmp_path):
    from conftest import REPO
    result = carehub("config", "check", str(REPO / "pipeline.conf"), "--json")
    summary = json.loads(result.stdout)
    assert [(org["id"], org["hipaa"], org["stages"]) for org in summary["orgs"]] == [
        ("riverside-clinic", True, ["auth", "idle", "encrypt", "store", "purge", "fanout"]),
        ("lotus-wellness", False, ["auth", "idle", "store", "fanout"]),
    ]
    text = carehub("config", "check", str(REPO / "pipeline.conf")).stdout
    assert "riverside-clinic" in text and "HIPAA mode on" in text

    broken = tmp_path / "broken.conf"
    broken.write_text("[org a]\nhipaa = on\nstage auth\nstage idle timeout=45m\nstage store\nstage fanout notify=loud\n")
    result = carehub("config", "check", str(broken), check=False)
    assert result.returncode == 1
    errors = result.stderr.strip().splitlines()
    assert f"{broken}:1: [org a] is in HIPAA mode and must run stage 'encrypt'" in errors
    assert any(line.startswith(f"{broken}:4: ") and "timeout=15m or less" in line for line in errors)
    assert any(line.startswith(f"{broken}:6: ") and "notify=none|count|preview" in line for line in errors)


def test_user_add_refuses_weak_passwords_and_unknown_orgs(tmp_path):
    from conftest import REPO
    config = str(REPO / "pipeline.conf")
    data = str(tmp_path / "data")
    short = carehub("user", "add", "--org", "riverside-clinic", "--user", "x", "--data", data, "--config", config, stdin="short\n", check=False)
    assert short.returncode == 1 and "at least 12" in short.stderr
    unknown = carehub("user", "add", "--org", "nowhere", "--user", "x", "--data", data, "--config", config, stdin="long enough password\n", check=False)
    assert unknown.returncode == 1 and "no organisation 'nowhere'" in unknown.stderr
    carehub("user", "add", "--org", "lotus-wellness", "--user", "x", "--data", data, "--config", config, stdin="long enough password\n")
    twice = carehub("user", "add", "--org", "lotus-wellness", "--user", "x", "--data", data, "--config", config, stdin="long enough password\n", check=False)
    assert twice.returncode == 1 and "already exists" in twice.stderr
    assert carehub("user", "list", "--org", "lotus-wellness", "--data", data).stdout.split() == ["x", "staff", "no-2fa"]
    common = carehub("user", "add", "--org", "lotus-wellness", "--user", "y", "--data", data, "--config", config, stdin="Password1234\n", check=False)
    assert common.returncode == 1 and "commonly used" in common.stderr
    padded = carehub("user", "add", "--org", "lotus-wellness", "--user", "y", "--data", data, "--config", config, stdin="sunshine!!2025\n", check=False)
    assert padded.returncode == 1 and "common word" in padded.stderr


def test_a_master_key_readable_by_others_is_refused(workdir):
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    assert hub.stop() == 0
    key = workdir / "data" / "master.key"
    assert key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o644)
    result = carehub("serve", "--config", str(workdir / "pipeline.conf"), "--data", str(workdir / "data"),
                     "--listen", "127.0.0.1:0", check=False)
    assert result.returncode == 1
    assert "must be 0600" in result.stderr


def test_tls_serves_wss_and_https_with_a_configured_certificate(workdir):
    import ssl
    import subprocess
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)
    hub = Hub(workdir, workdir / "pipeline.conf")
    hub.extra_args = ["--tls-cert", str(cert), "--tls-key", str(key)]
    hub.start()
    try:
        context = ssl.create_default_context(cafile=str(cert))

        async def scenario():
            import websockets
            ws = await websockets.connect(f"wss://127.0.0.1:{hub.port}/ws", ssl=context)
            client = Client(ws)
            welcome = await client.request({"type": "hello", "org": "lotus-wellness", "id": "h"}, "welcome")
            assert welcome["type"] == "welcome"
            ack = await client.request({"type": "send", "room": welcome["conversation"], "text": "over tls", "id": "t"}, "ack")
            assert ack["type"] == "ack"
            await client.close()

        run(scenario())
        with urllib.request.urlopen(f"https://127.0.0.1:{hub.port}/", context=context, timeout=TIMEOUT) as response:
            assert response.status == 200 and "CareHub" in response.read().decode()
    finally:
        hub.stop()


def test_metrics_endpoint_counts_without_content(hub):
    async def scenario():
        patient, welcome = await visitor(hub)
        ack = await patient.request({"type": "send", "room": welcome["conversation"], "text": CANARY, "id": "m"}, "ack")
        assert ack["type"] == "ack"
        bad = await Client.connect(hub)
        await bad.send("not json")
        assert (await bad.recv())["code"] == "bad_json"
        await bad.request({"type": "login", "org": "riverside-clinic", "user": "nobody", "password": "x", "id": "l"}, "session")
        with urllib.request.urlopen(f"http://127.0.0.1:{hub.port}/metrics", timeout=TIMEOUT) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = response.read().decode()
        await patient.close()
        await bad.close()
        return text

    text = run(scenario())
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert samples['carehub_frames_total{org="riverside-clinic",type="send"}'] == "1"
    assert samples['carehub_frame_errors_total{code="auth_failed"}'] == "1"
    assert samples['carehub_frame_errors_total{code="bad_json"}'] == "1"
    assert int(samples["carehub_messages_committed_total"]) >= 1
    assert int(samples["carehub_connections"]) == 2
    assert samples['carehub_sessions{org="riverside-clinic",kind="visitor"}'] == "1"
    # Stage latency histograms: hello and send passed every stage of the HIPAA chain.
    for stage in ("auth", "idle", "encrypt", "store", "purge", "fanout"):
        count = int(samples[f'carehub_stage_seconds_count{{org="riverside-clinic",stage="{stage}"}}'])
        assert count >= 2
        assert samples[f'carehub_stage_seconds_bucket{{org="riverside-clinic",stage="{stage}",le="+Inf"}}'] == str(count)
    # Commit durations: every commit is in exactly one bucket, and the buckets are cumulative.
    commits = int(samples["carehub_commits_total"])
    assert commits >= 1 and samples["carehub_commit_seconds_count"] == str(commits)
    assert samples['carehub_commit_seconds_bucket{le="+Inf"}'] == str(commits)
    bounds = [key for key in samples if key.startswith("carehub_commit_seconds_bucket")]
    assert [int(samples[key]) for key in bounds] == sorted(int(samples[key]) for key in bounds)
    assert "CANARY" not in text and "nobody" not in text
