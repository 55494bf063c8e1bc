"""Attachments over HTTP on the hub's port: a patient or a nurse uploads a file into a room with
the chat's bearer token, every reader of the room is told, and a reader downloads it. The type is
read from the bytes, the size is the organisation's, and only readers of the room get the file."""

import asyncio
import http.client
import json
import struct
import urllib.parse
import zlib

from conftest import Hub, add_account, staff, visitor

LOTUS = "lotus-wellness"


def run(coroutine):
    return asyncio.run(coroutine)


def png(width=3, height=2, marker=b""):
    """A valid PNG of `width` x `height` grey pixels; `marker` rides in a text chunk."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    text = chunk(b"tEXt", b"Comment\x00" + marker) if marker else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + text + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


SHIPPED = "attachments max_size=10MB types=image/jpeg,image/png,image/gif,image/webp,application/pdf"


def take_attachments(workdir, line="attachments max_size=200KB types=image/png,application/pdf"):
    """Gives the test organisation an attachments line (it is not in HIPAA mode: no scanner is needed)."""
    if not line:
        return
    config = workdir / "pipeline.conf"
    marker = "name  = Lotus Wellness Studio\n"
    text = config.read_text()
    assert marker in text
    config.write_text(text.replace(marker, f"{marker}{line}\n", 1))


def request(hub, method, path, token=None, body=None, headers=None):
    """One HTTP request to the hub; returns (status, headers, body bytes)."""
    connection = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=20)
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    connection.request(method, path, body=body, headers=sent)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, {name.lower(): value for name, value in response.getheaders()}, data


def upload(hub, token, room, data, name="photo.png", org=LOTUS):
    query = urllib.parse.urlencode({"org": org, "room": room})
    return request(hub, "POST", f"/attachments?{query}", token, data, {"X-Filename": urllib.parse.quote(name)})


def download(hub, token, attachment, org=LOTUS):
    return request(hub, "GET", f"/attachments/{attachment}?org={org}", token)


def problem(body):
    return json.loads(body)["code"]


def test_a_patients_photo_reaches_the_nurse_who_downloads_it_whole(workdir):
    take_attachments(workdir)
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        async def scenario():
            patient, welcome = await visitor(hub, org=LOTUS)
            room = welcome["conversation"]
            nurse, session = await staff(hub, org=LOTUS, user="coach.sam")
            await nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
            photo = png(marker=b"rash on the left arm")
            status, _, body = await asyncio.to_thread(upload, hub, welcome["token"], room, photo, "arm – left.png")
            assert status == 201, body
            answer = json.loads(body)
            attachment = answer["attachment"]
            assert attachment["name"] == "arm – left.png" and attachment["size"] == len(photo)
            assert attachment["type"] == "image/png" and attachment["state"] == "ready"
            told = await nurse.recv("message")
            assert told["seq"] == answer["seq"] and told["from"] == "visitor" and told["text"] == ""
            assert told["attachment"] == attachment
            # The sender's own socket hears of it too: the upload came over HTTP.
            assert (await patient.recv("message"))["attachment"]["id"] == attachment["id"]

            status, headers, data = await asyncio.to_thread(download, hub, session["token"], attachment["id"])
            assert status == 200 and data == photo
            assert headers["content-type"] == "image/png"
            assert headers["content-disposition"].startswith("attachment;")
            assert "filename*=UTF-8''arm%20%E2%80%93%20left.png" in headers["content-disposition"]
            assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store"
            # The patient may fetch its own file; a later subscriber sees it in the history.
            status, _, data = await asyncio.to_thread(download, hub, welcome["token"], attachment["id"])
            assert status == 200 and data == photo
            later, _ = await staff(hub, org=LOTUS, user="coach.sam")
            history = (await later.request({"type": "subscribe", "room": room, "id": "h"}, "subscribed"))["history"]
            assert [entry.get("attachment") for entry in history] == [attachment]
            for client in (patient, nurse, later):
                await client.close()
        run(scenario())
    finally:
        hub.stop()


def test_a_file_is_judged_by_its_bytes_and_its_size_not_its_name(workdir):
    take_attachments(workdir, "attachments max_size=2KB types=image/png")
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        async def scenario():
            patient, welcome = await visitor(hub, org=LOTUS)
            token, room = welcome["token"], welcome["conversation"]
            disguised = b"#!/bin/sh\necho this is not a picture\n"
            status, _, body = await asyncio.to_thread(upload, hub, token, room, disguised, "holiday.png")
            assert (status, problem(body)) == (415, "unsupported_type")
            pdf = b"%PDF-1.4\n" + b"0" * 100
            status, _, body = await asyncio.to_thread(upload, hub, token, room, pdf, "letter.pdf")
            assert (status, problem(body)) == (415, "unsupported_type"), "PDF is not in this organisation's types"
            status, _, body = await asyncio.to_thread(upload, hub, token, room, png(marker=b"x" * 3000))
            assert (status, problem(body)) == (413, "too_large")
            status, _, body = await asyncio.to_thread(upload, hub, token, room, png(), "")
            assert (status, problem(body)) == (400, "invalid_field")
            # Nothing refused became a message.
            await patient.request({"type": "send", "room": room, "text": "still here", "id": "m"}, "ack")
            assert not [frame for frame in patient.inbox if frame["type"] == "message" and "attachment" in frame]
            await patient.close()
        run(scenario())
    finally:
        hub.stop()


def test_only_readers_of_the_room_may_fetch_a_file(workdir):
    take_attachments(workdir)
    add_account(workdir, LOTUS, "coach.kim", "staff", "lotus-kim-test-pass")
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        async def scenario():
            patient, welcome = await visitor(hub, org=LOTUS)
            other, elsewhere = await visitor(hub, org=LOTUS)
            status, _, body = await asyncio.to_thread(upload, hub, welcome["token"], welcome["conversation"], png())
            assert status == 201, body
            attachment = json.loads(body)["attachment"]["id"]
            # Another patient of the same clinic: not their room.
            status, _, body = await asyncio.to_thread(download, hub, elsewhere["token"], attachment)
            assert (status, problem(body)) == (403, "forbidden")
            # Staff of another organisation, asking through their own organisation or this one.
            nurse, riverside = await staff(hub)
            status, _, body = await asyncio.to_thread(download, hub, riverside["token"], attachment, "riverside-clinic")
            assert (status, problem(body)) == (404, "not_found")
            status, _, body = await asyncio.to_thread(download, hub, riverside["token"], attachment)
            assert status == 401 and problem(body) == "auth_failed"
            # No token, a made-up token, a made-up id.
            status, _, body = await asyncio.to_thread(download, hub, None, attachment)
            assert (status, problem(body)) == (401, "unauthenticated")
            status, _, body = await asyncio.to_thread(download, hub, "not-a-token", attachment)
            assert (status, problem(body)) == (401, "auth_failed")
            kim, session = await staff(hub, org=LOTUS, user="coach.kim")
            status, _, body = await asyncio.to_thread(download, hub, session["token"], "a_" + "0" * 32)
            assert (status, problem(body)) == (404, "not_found")
            # Once the chat has ended the patient's token is spent; staff still read it.
            await patient.request({"type": "end", "room": welcome["conversation"], "id": "e"}, "ended")
            status, _, body = await asyncio.to_thread(download, hub, welcome["token"], attachment)
            assert (status, problem(body)) == (401, "auth_failed")
            status, _, data = await asyncio.to_thread(download, hub, session["token"], attachment)
            assert status == 200 and data == png()
            status, _, body = await asyncio.to_thread(upload, hub, session["token"], welcome["conversation"], png())
            assert (status, problem(body)) == (409, "conversation_ended")
            # A staff session that has logged out no longer opens anything.
            await kim.request({"type": "logout", "id": "o"}, "logged_out")
            status, _, body = await asyncio.to_thread(download, hub, session["token"], attachment)
            assert (status, problem(body)) == (401, "auth_failed")
            for client in (patient, other, nurse, kim):
                await client.close()
        run(scenario())
    finally:
        hub.stop()


def test_an_organisation_without_attachments_takes_none(workdir):
    take_attachments(workdir, "")
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        async def scenario():
            patient, welcome = await visitor(hub, org=LOTUS)
            status, _, body = await asyncio.to_thread(upload, hub, welcome["token"], welcome["conversation"], png())
            assert (status, problem(body)) == (403, "forbidden")
            await patient.close()
        run(scenario())
    finally:
        hub.stop()


def test_the_widgets_sites_may_upload_across_origins_and_no_other(workdir):
    take_attachments(workdir)
    config = workdir / "pipeline.conf"
    config.write_text(config.read_text().replace(
        "name  = Lotus Wellness Studio\n", "name  = Lotus Wellness Studio\nwidget_origins = https://lotus.example\n", 1))
    hub = Hub(workdir, config).start()
    try:
        status, headers, _ = request(hub, "OPTIONS", f"/attachments?org={LOTUS}&room=x", headers={
            "Origin": "https://lotus.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, x-filename"})
        assert status == 204
        assert headers["access-control-allow-origin"] == "https://lotus.example"
        assert "Authorization" in headers["access-control-allow-headers"] and "POST" in headers["access-control-allow-methods"]
        status, headers, _ = request(hub, "OPTIONS", f"/attachments?org={LOTUS}&room=x", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in headers

        async def scenario():
            patient, welcome = await visitor(hub, org=LOTUS)
            query = urllib.parse.urlencode({"org": LOTUS, "room": welcome["conversation"]})
            status, headers, body = await asyncio.to_thread(
                request, hub, "POST", f"/attachments?{query}", welcome["token"], png(),
                {"X-Filename": "a.png", "Origin": "https://lotus.example"})
            assert status == 201, body
            assert headers["access-control-allow-origin"] == "https://lotus.example"
            # A page elsewhere cannot use a token it got hold of: the widget's origin rule holds.
            status, headers, body = await asyncio.to_thread(
                request, hub, "POST", f"/attachments?{query}", welcome["token"], png(),
                {"X-Filename": "a.png", "Origin": "https://evil.example"})
            assert (status, problem(body)) == (403, "origin_refused")
            assert "access-control-allow-origin" not in headers
            await patient.close()
        run(scenario())
    finally:
        hub.stop()
