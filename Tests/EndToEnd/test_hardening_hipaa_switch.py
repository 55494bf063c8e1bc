"""Switching an organisation into HIPAA mode seals what it stored before: every message,
pre-chat form and file is sealed under its keys before the switch is reported done (by the admin API) or
logged done (after a reload), no plain copy survives in the database, its WAL or its free pages,
and staff still read the earlier chat."""

import asyncio
import json
import signal
import time

from conftest import PASSWORDS, TIMEOUT, Client, Hub, carehub, staff, visitor
from test_attachments import download, png, take_attachments, upload

LOTUS = "lotus-wellness"
CANARIES = ["CANARYSWITCHMSG", "CANARYSWITCHNAME", "CANARYSWITCHWHY", "CANARYLATEMSG"]


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 4))


def stored_bytes(hub):
    return b"".join(path.read_bytes() for path in sorted(hub.data.glob("carehub.sqlite*")))


async def earlier_chat(hub, text):
    patient = await Client.connect(hub)
    welcome = await patient.request({"type": "hello", "org": LOTUS, "id": "h",
                                     "profile": {"name": "CANARYSWITCHNAME Jones", "reason": "CANARYSWITCHWHY rash"}}, "welcome")
    room = welcome["conversation"]
    for number in range(3):
        await patient.request({"type": "send", "room": room, "text": f"{text} number {number}", "id": f"m{number}"}, "ack")
    return patient, room


def reload_into_hipaa(hub, scan=None):
    """Edits the organisation up to the HIPAA floor on the host (with `scan` after its idle stage),
    reloads with SIGHUP, and waits until the hub logs that earlier records are sealed."""
    section = hub.config.read_text().split("[org lotus-wellness]")
    idle = "timeout=15m lifetime=12h" + (f"\n{scan}" if scan else "")
    lotus = (section[1].replace("hipaa = off", "hipaa = on").replace("twofactor=optional", "twofactor=required")
             .replace("timeout=60m lifetime=12h", idle).replace("stage store", "stage encrypt\nstage store"))
    hub.config.write_text(section[0] + "[org lotus-wellness]" + lotus)
    hub.signal(signal.SIGHUP)
    hub.expect_line("configuration reloaded")
    deadline = time.time() + TIMEOUT
    while "records kept before HIPAA mode are sealed" not in hub.log_text():
        assert time.time() < deadline, hub.log_text()
        time.sleep(0.1)


async def read_back(hub, room):
    """A staff member of the organisation, now under HIPAA rules, reads the earlier chat."""
    coach, _ = await staff(hub, LOTUS, "coach.sam")
    subscribed = await coach.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
    await coach.close()
    return subscribed


def test_the_admin_switch_seals_earlier_messages_and_forms_before_it_reports_done(hub):
    PASSWORDS[(LOTUS, "lotus.admin")] = "lotus-admin-test-pass"
    carehub("user", "add", "--org", LOTUS, "--user", "lotus.admin", "--role", "admin", "--data", str(hub.data),
            "--config", str(hub.config), stdin=PASSWORDS[(LOTUS, "lotus.admin")] + "\n")

    async def scenario():
        patient, room = await earlier_chat(hub, "CANARYSWITCHMSG my knee")
        boss, _ = await staff(hub, LOTUS, "lotus.admin")
        current = (await boss.request({"type": "admin", "op": "pipeline.get", "id": "g"}, "admin"))["result"]
        text = (current["text"].replace("twofactor=optional", "twofactor=required")
                .replace("timeout=60m", "timeout=15m").replace("stage store", "stage encrypt\nstage store"))
        applied = await boss.request({"type": "admin", "op": "pipeline.replace", "id": "r", "text": text, "base": current["version"]}, "admin")
        assert applied["type"] == "admin", applied
        enabled = await boss.request({"type": "admin", "op": "hipaa.enable", "id": "e", "baaSignedOn": "2026-01-15",
                                      "privacyOfficer": "Dana Reyes", "privacyOfficerEmail": "privacy@lotus.example"}, "admin")
        assert enabled["type"] == "admin" and enabled["result"]["hipaa"] is True, enabled
        # Reported done: nothing of the earlier chat is left in plain text anywhere in the files.
        everything = stored_bytes(hub)
        for canary in CANARIES[:3]:
            assert canary.encode() not in everything, canary
        for client in (patient, boss):
            await client.close()
        return room

    room = run(scenario())
    subscribed = run(read_back(hub, room))
    assert [entry["text"] for entry in subscribed["history"]] == [f"CANARYSWITCHMSG my knee number {n}" for n in range(3)]
    assert subscribed["visitor"] == {"name": "CANARYSWITCHNAME Jones", "reason": "CANARYSWITCHWHY rash"}
    export = carehub("audit", "export", "--data", str(hub.data)).stdout
    assert '"action":"hipaa.sealed"' in export.replace(" ", "") and "messages=3 forms=1 files=0" in export


def test_a_reload_into_hipaa_mode_seals_earlier_records(hub):
    async def before():
        patient, room = await earlier_chat(hub, "CANARYSWITCHMSG my back")
        await patient.close()
        return room

    room = run(before())
    reload_into_hipaa(hub)
    everything = stored_bytes(hub)
    for canary in CANARIES[:3]:
        assert canary.encode() not in everything, canary
    subscribed = run(read_back(hub, room))
    assert [entry["text"] for entry in subscribed["history"]] == [f"CANARYSWITCHMSG my back number {n}" for n in range(3)]
    assert subscribed["visitor"]["name"] == "CANARYSWITCHNAME Jones"


def test_a_switch_into_hipaa_mode_seals_earlier_files_too(workdir):
    """A file kept in plain form before the switch is sealed, name and bytes, and still opens."""
    take_attachments(workdir)
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    photo = png(marker=b"CANARYSWITCHPIXELS left knee")
    try:
        async def before():
            patient, welcome = await visitor(hub, org=LOTUS)
            status, _, body = await asyncio.to_thread(
                upload, hub, welcome["token"], welcome["conversation"], photo, "CANARYSWITCHFILE knee.png")
            assert status == 201, body
            await patient.close()
            return welcome["conversation"], json.loads(body)["attachment"]["id"]

        room, attachment = run(before())
        assert b"CANARYSWITCHPIXELS" in stored_bytes(hub), "the file was kept plain before the switch"
        # In HIPAA mode files must be scanned; the scanner is not needed for files kept before.
        reload_into_hipaa(hub, "stage scan socket=/nonexistent/clamd.sock on_error=hold")
        everything = stored_bytes(hub)
        assert b"CANARYSWITCHPIXELS" not in everything and b"CANARYSWITCHFILE" not in everything

        async def after():
            coach, session = await staff(hub, LOTUS, "coach.sam")
            status, headers, data = await asyncio.to_thread(download, hub, session["token"], attachment)
            assert status == 200 and data == photo
            assert "CANARYSWITCHFILE" in headers["content-disposition"]
            await coach.close()
        run(after())
    finally:
        hub.stop()
    export = carehub("audit", "export", "--data", str(hub.data)).stdout
    assert "messages=1 forms=0 files=1" in export
