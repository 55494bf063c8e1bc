"""The end-of-chat hook and integrations against the real hub: export directories (plain and
CMS-encrypted), a failing sink, retention, abandoned chats, a real local HTTPS receiver for
webhooks, and a sendmail-compatible command for e-mail."""

import asyncio
import http.server
import json
import os
import signal
import ssl
import stat
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import TIMEOUT, Client, Hub, carehub, staff, visitor

CANARY = "CANARY-delta-2718 my chest hurts"


class Receiver:
    """An HTTPS server on a free loopback port with a self-signed certificate made for the test.
    Records every POST body; answers `status`."""

    def __init__(self, directory: Path):
        self.cert = directory / "receiver.pem"
        key = directory / "receiver.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(self.cert)],
            check=True, capture_output=True)
        self.bodies = []
        self.status = 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                if receiver.status == 200:
                    receiver.bodies.append((self.path, body))
                self.send_response(receiver.status)
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

    def wait_for(self, path, count=1):
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            found = [body for p, body in self.bodies if p == path]
            if len(found) >= count:
                return found
            time.sleep(0.2)
        raise AssertionError(f"no POST to {path} within {TIMEOUT}s; got {self.bodies}")

    def close(self):
        self.server.shutdown()


def write_config(workdir, riverside_extra="", riverside_purge="on=end", riverside_fanout="notify=none",
                 lotus_extra="", lotus_purge=None, lotus_fanout="notify=none"):
    """A pipeline.conf for the test's orgs (the accounts from the workdir fixture exist in both)."""
    lines = [
        "[org riverside-clinic]", "name = Riverside Family Clinic", "hipaa = on",
        "stage auth visitors=on twofactor=required", "stage idle timeout=15m", "stage encrypt", "stage store",
        f"stage purge {riverside_purge}", f"stage fanout {riverside_fanout}", riverside_extra, "",
        "[org lotus-wellness]", "name = Lotus Wellness Studio", "hipaa = off", "stage auth", "stage store",
    ]
    if lotus_purge:
        lines.append(f"stage purge {lotus_purge}")
    lines += [f"stage fanout {lotus_fanout}", lotus_extra, ""]
    path = workdir / "integrations.conf"
    path.write_text("\n".join(lines))
    return path


def export_certificate(workdir):
    """A key pair for encrypted exports, as a records office would make it; returns (key, certificate)."""
    key, cert = workdir / "export.key", workdir / "export.pem"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=records",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return key, cert


def start(workdir, config):
    return Hub(workdir, config).start()


def data_bytes(hub):
    return b"".join(p.read_bytes() for p in hub.data.iterdir() if p.name.startswith("carehub.sqlite"))


def pending_purges(hub):
    out = carehub("conversations", "--pending-purge", "--json", "--data", str(hub.data)).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def metric(hub, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{hub.port}/metrics", timeout=TIMEOUT).read().decode()
    return [line for line in text.splitlines() if line.startswith(name)]


def wait_until(predicate, what, timeout=TIMEOUT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


async def chat_and_end(hub, org="riverside-clinic", user="nurse.joy", transcript_to=None):
    patient, welcome = await visitor(hub, org)
    room = welcome["conversation"]
    assert welcome["transcriptEmail"] is (transcript_to is not None)
    ack = await patient.request({"type": "send", "room": room, "text": CANARY, "id": "m"}, "ack")
    assert ack["type"] == "ack", ack
    if transcript_to:
        reply = await patient.request({"type": "transcript", "room": room, "to": transcript_to, "id": "t"}, "transcript_requested")
        assert reply["type"] == "transcript_requested", reply
    nurse, _ = await staff(hub, org, user)
    subscribed = await nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
    assert [m["text"] for m in subscribed["history"]] == [CANARY]
    ended = await nurse.request({"type": "end", "room": room, "id": "e"}, "ended")
    assert ended["type"] == "ended", ended
    await patient.close()
    await nurse.close()
    return room


def test_an_ended_chat_is_exported_encrypted_then_purged(workdir):
    exports = workdir / "exports"
    exports.mkdir()
    key, cert = export_certificate(workdir)
    config = write_config(workdir, riverside_purge=f"on=end export_dir={exports} export_key={cert}",
                          lotus_purge=f"on=end export_dir={exports}")
    hub = start(workdir, config)
    try:
        room = asyncio.run(chat_and_end(hub))
        wait_until(lambda: (exports / f"{room}.json.cms").exists(), "the encrypted export")
        sealed = exports / f"{room}.json.cms"
        assert stat.S_IMODE(sealed.stat().st_mode) == 0o600
        assert CANARY.encode() not in sealed.read_bytes()
        opened = subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(sealed), "-inkey", str(key)],
                                check=True, capture_output=True).stdout
        transcript = json.loads(opened)
        assert transcript["conversation"] == room and transcript["org"] == "riverside-clinic"
        assert [m["text"] for m in transcript["messages"]] == [CANARY]
        assert [m["from"] for m in transcript["messages"]] == ["visitor"]
        # Nothing partial is left behind, and the database holds no trace of the text.
        assert sorted(p.name for p in exports.iterdir()) == [f"{room}.json.cms"]
        assert pending_purges(hub) == []

        plain_room = asyncio.run(chat_and_end(hub, "lotus-wellness", "coach.sam"))
        wait_until(lambda: (exports / f"{plain_room}.json").exists(), "the plain export")
        assert [m["text"] for m in json.loads((exports / f"{plain_room}.json").read_text())["messages"]] == [CANARY]
    finally:
        hub.stop()
    assert CANARY.encode() not in data_bytes(hub)
    events = [json.loads(line) for line in carehub("audit", "export", "--data", str(hub.data)).stdout.splitlines()]
    purged = [e for e in events if e["action"] == "conversation.purged" and e["target"] == room]
    assert len(purged) == 1
    assert purged[0]["detail"] == f"messages=1 key=shredded reason=end export=directory:{exports} (encrypted)"


def test_a_failing_sink_purges_nothing_until_it_recovers(workdir):
    exports = workdir / "exports-not-mounted"
    key, cert = export_certificate(workdir)
    config = write_config(workdir, riverside_purge=f"on=end export_dir={exports} export_key={cert}")
    hub = start(workdir, config)
    try:
        room = asyncio.run(chat_and_end(hub))
        wait_until(lambda: any(p["conversation"] == room and p["attempts"] >= 1 for p in pending_purges(hub)), "a deferred purge")
        [pending] = pending_purges(hub)
        assert "No such file or directory" in pending["lastError"] and CANARY not in pending["lastError"]
        wait_until(lambda: metric(hub, 'carehub_purge_pending{org="riverside-clinic"}') == ['carehub_purge_pending{org="riverside-clinic"} 1'],
                   "the purge backlog metric")
        # The transcript is still there: a new reader still gets it.
        async def still_there():
            nurse, _ = await staff(hub)
            reply = await nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
            await nurse.close()
            return [m["text"] for m in reply["history"]]
        assert asyncio.run(still_there()) == [CANARY]

        exports.mkdir()
        # The next attempt comes on the back-off schedule (5 s, 10 s, 20 s, 40 s … after failures).
        wait_until(lambda: pending_purges(hub) == [], "the retried export and purge", timeout=90)
        opened = subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(exports / f"{room}.json.cms"),
                                 "-inkey", str(key)], check=True, capture_output=True).stdout
        assert [m["text"] for m in json.loads(opened)["messages"]] == [CANARY]
        assert asyncio.run(still_there()) == []
    finally:
        hub.stop()
    assert "reason=retry" in carehub("audit", "export", "--data", str(hub.data)).stdout


def test_retention_and_abandonment_end_and_purge_chats(workdir):
    exports = workdir / "exports"
    exports.mkdir()
    _, cert = export_certificate(workdir)
    config = write_config(workdir, riverside_purge=f"on=end retain=4s export_dir={exports} export_key={cert}",
                          lotus_purge=f"on=end abandon=2s export_dir={exports}")
    hub = start(workdir, config)
    try:
        async def scenario():
            # Retention: the visitor stays connected and is told the chat ended.
            patient, welcome = await visitor(hub)
            old = welcome["conversation"]
            await patient.request({"type": "send", "room": old, "text": CANARY, "id": "m"}, "ack")
            ended = await patient.recv("ended")
            assert ended["room"] == old
            # Abandonment: the visitor is answered, leaves and does not come back. (A visitor whose
            # last message is unanswered is never abandoned.)
            leaver, welcome = await visitor(hub, "lotus-wellness")
            gone = welcome["conversation"]
            await leaver.request({"type": "send", "room": gone, "text": CANARY, "id": "m"}, "ack")
            coach, _ = await staff(hub, org="lotus-wellness", user="coach.sam")
            await coach.request({"type": "send", "room": gone, "text": "We will call you back", "id": "a"}, "ack")
            await leaver.close()
            await coach.close()
            return old, gone
        old, gone = asyncio.run(scenario())
        wait_until(lambda: (exports / f"{old}.json.cms").exists() and (exports / f"{gone}.json").exists(), "both exports")
        listed = carehub("conversations", "--org", "lotus-wellness", "--json", "--data", str(hub.data)).stdout
        assert json.loads(listed.splitlines()[0])["state"] == "purged"
    finally:
        hub.stop()
    detail = carehub("audit", "export", "--data", str(hub.data)).stdout
    assert "reason=retention" in detail and "reason=abandoned" in detail
    assert CANARY.encode() not in data_bytes(hub)


def test_webhook_notifications_over_https_carry_no_patient_data_in_hipaa_mode(workdir):
    receiver = Receiver(workdir)
    ca = f"ca={receiver.cert}"
    config = write_config(
        workdir,
        riverside_fanout="notify=count via=pager,untrusted",
        riverside_purge="on=end export_to=records",
        riverside_extra=(f"integration pager type=webhook url={receiver.url('/riverside')} baa=yes {ca}\n"
                         f"integration records type=webhook url={receiver.url('/records')} baa=yes {ca}\n"
                         # Same receiver, but its self-signed certificate is not trusted: nothing may reach it.
                         f"integration untrusted type=webhook url={receiver.url('/untrusted')} baa=yes"),
        lotus_fanout="notify=preview preview_chars=20 via=chat",
        lotus_extra=f"integration chat type=webhook url={receiver.url('/lotus')} baa=no {ca}")
    hub = Hub(workdir, config)
    hub.extra_args = ["--public-url", "https://chat.riverside.example/"]
    hub.start()
    try:
        async def messages_nobody_watches():
            for org in ("riverside-clinic", "lotus-wellness"):
                patient, welcome = await visitor(hub, org)
                room = welcome["conversation"]
                for text in (CANARY, CANARY + " again"):
                    await patient.request({"type": "send", "room": room, "text": text, "id": "m"}, "ack")
                await patient.close()
        asyncio.run(messages_nobody_watches())
        hipaa = [json.loads(body) for body in receiver.wait_for("/riverside", 2)]
        assert [n["unread"] for n in hipaa] == [1, 2]
        for note in hipaa:
            assert "CANARY" not in json.dumps(note) and "chest" not in json.dumps(note)
            assert note["organisation"] == "Riverside Family Clinic"
            assert note["link"] == "https://chat.riverside.example/staff.html#room=" + note["conversation"]
            assert "preview" not in note
        open_org = [json.loads(body) for body in receiver.wait_for("/lotus", 2)]
        assert open_org[0]["preview"] == CANARY[:20] + "…"
        wait_until(lambda: metric(hub, 'carehub_notifications{org="riverside-clinic",state="sent"}')
                   == ['carehub_notifications{org="riverside-clinic",state="sent"} 2'], "the sent count")

        # A receiver that fails is retried: nothing is lost.
        receiver.status = 503
        async def one_more():
            patient, welcome = await visitor(hub)
            await patient.request({"type": "send", "room": welcome["conversation"], "text": CANARY, "id": "m"}, "ack")
            await patient.close()
        asyncio.run(one_more())
        wait_until(lambda: "answered HTTP 503" in hub.log_text(), "a failed attempt")
        receiver.status = 200
        receiver.wait_for("/riverside", 3)

        # The transcript goes to the BAA-covered records endpoint before the purge.
        room = asyncio.run(chat_and_end(hub))
        [exported] = [json.loads(body) for body in receiver.wait_for("/records")]
        assert exported["conversation"] == room and [m["text"] for m in exported["messages"]] == [CANARY]
        wait_until(lambda: pending_purges(hub) == [], "the purge after the export")

        # An http:// webhook for the HIPAA org is refused, by the check and by a running hub.
        bad = config.read_text().replace(receiver.url("/riverside"), f"http://127.0.0.1:{receiver.port}/riverside")
        bad_config = workdir / "bad.conf"
        bad_config.write_text(bad)
        checked = carehub("config", "check", str(bad_config), check=False)
        assert checked.returncode == 1
        assert "bad.conf:10: HIPAA organisation may not send to a plain-http webhook" in checked.stderr + checked.stdout
        config.write_text(bad)
        hub.signal(signal.SIGHUP)
        wait_until(lambda: "configuration refused; keeping the one in force" in hub.log_text(), "the refused reload")
    finally:
        hub.stop()
        receiver.close()
    assert "CANARY" not in hub.log_text()
    assert [path for path, _ in receiver.bodies if path == "/untrusted"] == []
    assert "integration=untrusted" in hub.log_text()


def test_email_notifications_and_transcripts_go_through_the_mail_command(workdir):
    mailbox = workdir / "mailbox"
    mailbox.mkdir()
    sendmail = workdir / "fake-sendmail"
    sendmail.write_text(f"#!/bin/sh\ncat > \"{mailbox}/$(date +%s%N).eml\"\n")
    sendmail.chmod(0o755)
    config = write_config(
        workdir,
        lotus_purge="on=end transcript_email=mailer",
        lotus_fanout="notify=count via=desk",
        lotus_extra=(f'integration mailer type=email from=studio@lotus.example command="{sendmail} -t" baa=no\n'
                     f'integration desk type=email to=desk@lotus.example command="{sendmail} -t" baa=no'))
    hub = start(workdir, config)
    try:
        asyncio.run(chat_and_end(hub, "lotus-wellness", "coach.sam", transcript_to="pat@example.org"))
        def mails():
            return [p.read_text() for p in sorted(mailbox.iterdir())]
        wait_until(lambda: any("To: pat@example.org" in m for m in mails()) and any("To: desk@lotus.example" in m for m in mails()),
                   "the transcript and the notice")
        [transcript] = [m for m in mails() if "To: pat@example.org" in m]
        assert "From: studio@lotus.example" in transcript and CANARY in transcript
        [notice] = [m for m in mails() if "To: desk@lotus.example" in m]
        assert "1 unread message" in notice and CANARY not in notice

        # The HIPAA org does not offer it.
        async def refused():
            patient, welcome = await visitor(hub)
            reply = await patient.request({"type": "transcript", "room": welcome["conversation"], "to": "pat@example.org", "id": "t"},
                                          "transcript_requested")
            await patient.close()
            return reply
        reply = asyncio.run(refused())
        assert reply["type"] == "error" and reply["code"] == "forbidden"
    finally:
        hub.stop()


def test_staff_see_only_assigned_rooms_when_the_org_restricts_them(workdir):
    config = write_config(workdir)
    config.write_text(config.read_text().replace("hipaa = on", "hipaa = on\nstaff_access = assigned"))
    hub = start(workdir, config)
    try:
        async def scenario():
            patient, welcome = await visitor(hub)
            room = welcome["conversation"]
            nurse, _ = await staff(hub)
            admin, _ = await staff(hub, user="dr.admin")
            assert (await nurse.request({"type": "rooms", "id": "r"}, "rooms"))["rooms"] == []
            refused = await nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
            assert refused["type"] == "error" and refused["code"] == "forbidden"
            assigned = await admin.request({"type": "assign", "room": room, "user": "nurse.joy", "id": "a"}, "assigned")
            assert assigned == {"type": "assigned", "id": "a", "room": room, "user": "nurse.joy"}
            assert (await nurse.recv("assigned"))["room"] == room
            rooms = (await nurse.request({"type": "rooms", "id": "r2"}, "rooms"))["rooms"]
            assert [(r["room"], r["assignedTo"]) for r in rooms] == [(room, "nurse.joy")]
            assert (await nurse.request({"type": "subscribe", "room": room, "id": "s2"}, "subscribed"))["type"] == "subscribed"
            # Reassigned from the command line while the hub runs: the room list shows it at once,
            # and frames naming the room follow within a second (the hub re-reads its record).
            carehub("conversations", "assign", "--org", "riverside-clinic", "--data", str(hub.data), room, "dr.admin")
            assert (await nurse.request({"type": "rooms", "id": "r3"}, "rooms"))["rooms"] == []
            for attempt in range(50):
                reply = await nurse.request({"type": "subscribe", "room": room, "id": f"s{attempt + 3}"}, "subscribed")
                if reply["type"] == "error":
                    break
                await asyncio.sleep(0.1)
            assert reply["type"] == "error" and reply["code"] == "forbidden"
            for client in (patient, nurse, admin):
                await client.close()
        asyncio.run(scenario())
    finally:
        hub.stop()
