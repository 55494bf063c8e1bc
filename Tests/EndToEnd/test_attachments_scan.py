"""The scan stage against a real ClamAV daemon (started by the tests with a signature file they
write): in the HIPAA clinic every file passes clamd before anyone can open it, EICAR is refused
and audited by its signature's name only, a scanner that is down rejects or holds, and no file
name or byte reaches a file, a log or an export in plain form."""

import asyncio
import base64
import json
import sqlite3

from clamd_server import EICAR, clamd, clamd_daemon  # noqa: F401 (the fixtures)
from conftest import Hub, carehub, staff, visitor
from test_attachments import download, png, problem, upload

RIVERSIDE = "riverside-clinic"


def run(coroutine):
    return asyncio.run(coroutine)


def scan_files(workdir, socket, on_error="reject"):
    """Turns on the shipped (commented) attachments and scan lines of the HIPAA clinic, with the
    scanner at `socket`."""
    config = workdir / "pipeline.conf"
    text = config.read_text()
    attachments = "#   attachments max_size=10MB\n"
    scan = "#   stage scan     engine=clamd socket=/run/clamav/clamd.ctl on_error=hold retry=30s\n"
    assert attachments in text and scan in text
    text = text.replace(attachments, "attachments max_size=10MB\n", 1)
    text = text.replace(scan, f"stage scan engine=clamd socket={socket} on_error={on_error} retry=1s\n", 1)
    config.write_text(text)


async def watched_chat(hub):
    """A patient's new chat in the HIPAA clinic, with a nurse reading it: (patient, its token, the
    room, the nurse, her session)."""
    patient, welcome = await visitor(hub, org=RIVERSIDE)
    nurse, session = await staff(hub, org=RIVERSIDE)
    await nurse.request({"type": "subscribe", "room": welcome["conversation"], "id": "s"}, "subscribed")
    return patient, welcome["token"], welcome["conversation"], nurse, session


def audit_rows(hub):
    return [json.loads(line) for line in carehub("audit", "export", "--data", str(hub.data)).stdout.splitlines()]


def test_the_shipped_lines_pass_the_check_once_uncommented(workdir, clamd):
    scan_files(workdir, clamd.socket)
    checked = carehub("config", "check", str(workdir / "pipeline.conf"), "--json")
    riverside = next(org for org in json.loads(checked.stdout)["orgs"] if org["id"] == RIVERSIDE)
    assert riverside["stages"] == ["auth", "idle", "scan", "encrypt", "store", "purge", "fanout"]
    assert riverside["attachments"]["maxBytes"] == 10_000_000
    # Without the stage the HIPAA floor refuses the attachments line, naming it.
    config = workdir / "pipeline.conf"
    lines = [line for line in config.read_text().splitlines(keepends=True) if not line.startswith("stage scan")]
    config.write_text("".join(lines))
    refused = carehub("config", "check", str(config), check=False)
    number = next(index for index, line in enumerate(lines, 1) if line.startswith("attachments"))
    assert refused.returncode != 0
    assert f"pipeline.conf:{number}: [org {RIVERSIDE}] is in HIPAA mode and takes attachments, so it must run stage 'scan'" in refused.stderr


def test_eicar_is_refused_and_audited_by_signature_and_a_clean_file_passes(workdir, clamd):
    scan_files(workdir, clamd.socket)
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        async def scenario():
            patient, token, room, nurse, session = await watched_chat(hub)

            status, _, body = await asyncio.to_thread(
                upload, hub, token, room, png(marker=EICAR), "CANARYEVILNAME.png", RIVERSIDE)
            assert status == 422 and problem(body) == "infected", body
            clean = png(marker=b"a harmless comment")
            status, _, body = await asyncio.to_thread(upload, hub, token, room, clean, "card.png", RIVERSIDE)
            assert status == 201, body
            attachment = json.loads(body)["attachment"]
            assert attachment["state"] == "ready"
            # The room heard of the clean file only: nothing was stored of the infected one.
            told = await nurse.recv("message")
            assert told["attachment"]["id"] == attachment["id"]
            history = (await nurse.request({"type": "subscribe", "room": room, "id": "h"}, "subscribed"))["history"]
            assert [entry["attachment"]["id"] for entry in history] == [attachment["id"]]
            status, _, data = await asyncio.to_thread(download, hub, session["token"], attachment["id"], RIVERSIDE)
            assert status == 200 and data == clean
            await patient.close()
            await nurse.close()
            return room, attachment["id"]
        room, clean_id = run(scenario())
    finally:
        hub.stop()
    rows = audit_rows(hub)
    infected = [row for row in rows if row["action"] == "attachment.infected"]
    assert len(infected) == 1 and infected[0]["target"] == room and infected[0]["actor"] == "visitor"
    assert infected[0]["detail"].endswith(" signature=CareHub.Test.EICAR.UNOFFICIAL")
    assert any(row["action"] == "phi.read" and row["detail"] == f"attachment={clean_id}" for row in rows)
    everything = json.dumps(rows) + hub.log_text()
    assert "CANARYEVILNAME" not in everything and "EICAR-STANDARD" not in everything
    with sqlite3.connect(hub.data / "carehub.sqlite") as database:
        assert database.execute("SELECT count(*) FROM attachments").fetchone()[0] == 1


def test_a_scanner_that_is_down_rejects_or_holds_until_it_is_back(workdir, clamd):
    scan_files(workdir, clamd.socket, on_error="reject")
    clamd.stop()
    try:
        hub = Hub(workdir, workdir / "pipeline.conf").start()
        try:
            async def rejected():
                patient, welcome = await visitor(hub, org=RIVERSIDE)
                status, _, body = await asyncio.to_thread(
                    upload, hub, welcome["token"], welcome["conversation"], png(), "card.png", RIVERSIDE)
                assert status == 503 and problem(body) == "unavailable", body
                await patient.close()
            run(rejected())
        finally:
            hub.stop()
        assert "malware scanner unavailable" in hub.log_text()

        # The same clinic holding files instead: stored unreadable, released once clamd is back.
        text = (workdir / "pipeline.conf").read_text().replace("on_error=reject retry=1s", "on_error=hold retry=1s")
        (workdir / "pipeline.conf").write_text(text)
        hub = Hub(workdir, workdir / "pipeline.conf").start()
        try:
            async def held():
                patient, token, room, nurse, session = await watched_chat(hub)
                photo = png(marker=b"insurance card, front")
                status, _, body = await asyncio.to_thread(upload, hub, token, room, photo, "card.png", RIVERSIDE)
                assert status == 201, body
                attachment = json.loads(body)["attachment"]
                assert attachment["state"] == "held"
                assert (await nurse.recv("message"))["attachment"]["state"] == "held"
                status, _, body = await asyncio.to_thread(download, hub, session["token"], attachment["id"], RIVERSIDE)
                assert status == 409 and problem(body) == "attachment_held"
                # A second file, infected, is held too, then refused and erased once clamd looks at it.
                status, _, body = await asyncio.to_thread(upload, hub, token, room, png(marker=EICAR), "x.png", RIVERSIDE)
                assert status == 201, body
                infected = json.loads(body)["attachment"]
                await nurse.recv("message")

                await asyncio.to_thread(clamd.start)
                ready = await nurse.recv("attachment_ready")
                assert ready == {"type": "attachment_ready", "room": room, "attachment": attachment["id"]}
                refused = await nurse.recv("attachment_refused")
                assert refused == {"type": "attachment_refused", "room": room, "attachment": infected["id"], "code": "infected"}
                status, _, data = await asyncio.to_thread(download, hub, session["token"], attachment["id"], RIVERSIDE)
                assert status == 200 and data == photo
                status, _, body = await asyncio.to_thread(download, hub, session["token"], infected["id"], RIVERSIDE)
                assert status == 404 and problem(body) == "not_found"
                await patient.close()
                await nurse.close()
                return attachment["id"]
            ready_id = run(held())
        finally:
            hub.stop()
    finally:
        clamd.start()
    rows = audit_rows(hub)
    assert any(row["action"] == "attachment.scanned" and row["detail"] == f"attachment={ready_id} result=clean" for row in rows)
    assert any(row["action"] == "attachment.infected" and row["actor"] == "system" for row in rows)


def test_no_file_name_or_byte_reaches_disk_logs_or_exports_in_plain_form(workdir, clamd):
    scan_files(workdir, clamd.socket)
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    photo = png(width=40, height=30, marker=b"CANARYPIXELS rash, left forearm")
    name = "CANARYFILENAME Jane Doe.png"
    try:
        async def scenario():
            patient, token, room, nurse, session = await watched_chat(hub)
            status, _, body = await asyncio.to_thread(upload, hub, token, room, photo, name, RIVERSIDE)
            assert status == 201, body
            attachment = json.loads(body)["attachment"]
            # Live readers get the name; the store keeps it sealed.
            assert (await nurse.recv("message"))["attachment"]["name"] == name
            status, headers, data = await asyncio.to_thread(download, hub, session["token"], attachment["id"], RIVERSIDE)
            assert status == 200 and data == photo and "CANARYFILENAME" in headers["content-disposition"]
            stored = b"".join(path.read_bytes() for path in sorted(hub.data.glob("carehub.sqlite*")))
            assert b"CANARYPIXELS" not in stored and b"CANARYFILENAME" not in stored
            # The chat ends: its transcript, files included, goes to the records office encrypted, and
            # everything of it is erased from the hub.
            await nurse.request({"type": "end", "room": room, "id": "e"}, "ended")
            for _ in range(100):
                status, _, body = await asyncio.to_thread(download, hub, session["token"], attachment["id"], RIVERSIDE)
                if status == 404:
                    break
                await asyncio.sleep(0.1)
            assert status == 404 and problem(body) == "not_found"
            await patient.close()
            await nurse.close()
        run(scenario())
    finally:
        hub.stop()
    exports = list((workdir / "records").iterdir())
    assert exports, "the transcript was exported"
    with sqlite3.connect(hub.data / "carehub.sqlite") as database:
        assert database.execute("SELECT count(*) FROM attachments").fetchone()[0] == 0
        assert database.execute("SELECT count(*) FROM attachment_chunks").fetchone()[0] == 0
    blobs = [path.read_bytes() for path in sorted(hub.data.rglob("*")) if path.is_file()]
    blobs += [path.read_bytes() for path in exports]
    blobs.append(hub.log_text().encode())
    blobs.append(carehub("audit", "export", "--data", str(hub.data)).stdout.encode())
    for blob in blobs:
        assert b"CANARYPIXELS" not in blob and b"CANARYFILENAME" not in blob
    # The export opens, with the records office's key, to the file itself.
    transcript = json.loads(carehub_decrypt(workdir, exports[0]))
    files = [line["attachment"] for line in transcript["messages"] if line.get("attachment")]
    assert [(file["name"], base64.b64decode(file["data"])) for file in files] == [(name, photo)]


def carehub_decrypt(workdir, path):
    """Opens a CMS export with the records office's private key, as the office would."""
    import subprocess
    result = subprocess.run(
        ["openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(path), "-inkey", str(workdir / "records-key.pem")],
        capture_output=True, check=True)
    return result.stdout


def test_under_assigned_access_only_the_assignee_and_admins_fetch_a_file(workdir, clamd):
    scan_files(workdir, clamd.socket)
    config = workdir / "pipeline.conf"
    config.write_text(config.read_text().replace("hipaa = on\n", "hipaa = on\nstaff_access = assigned\n", 1))
    hub = Hub(workdir, config).start()
    try:
        async def scenario():
            patient, welcome = await visitor(hub, org=RIVERSIDE)
            room = welcome["conversation"]
            status, _, body = await asyncio.to_thread(upload, hub, welcome["token"], room, png(), "card.png", RIVERSIDE)
            assert status == 201, body
            attachment = json.loads(body)["attachment"]["id"]
            nurse, nurse_session = await staff(hub, org=RIVERSIDE)
            admin, admin_session = await staff(hub, org=RIVERSIDE, user="dr.admin")
            # Nobody has given the nurse this chat.
            status, _, body = await asyncio.to_thread(download, hub, nurse_session["token"], attachment, RIVERSIDE)
            assert (status, problem(body)) == (403, "forbidden")
            status, _, data = await asyncio.to_thread(download, hub, admin_session["token"], attachment, RIVERSIDE)
            assert status == 200 and data == png()
            await admin.request({"type": "assign", "room": room, "user": "nurse.joy", "id": "a"}, "assigned")
            status, _, data = await asyncio.to_thread(download, hub, nurse_session["token"], attachment, RIVERSIDE)
            assert status == 200 and data == png()
            for client in (patient, nurse, admin):
                await client.close()
        run(scenario())
    finally:
        hub.stop()
