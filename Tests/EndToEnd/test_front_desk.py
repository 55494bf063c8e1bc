"""The front desk on the wire: who is available, the queue a patient waits in, claiming and
transferring chats with a note, read receipts, and messages left while nobody is there."""

import asyncio
import json
import time

from conftest import TIMEOUT, Client, Hub, carehub, staff, visitor

NOTE = "CANARY-NOTE allergic to penicillin, asked twice"
LEFT = "CANARY-LEFT please call me about my results"
KIM = ("nurse.kim", "riverside-kim-test-pass")


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 6))


def add_kim(workdir):
    carehub("user", "add", "--org", "riverside-clinic", "--user", KIM[0], "--role", "staff", "--display-name", "Kim Lee",
            "--data", str(workdir / "data"), "--config", str(workdir / "pipeline.conf"), stdin=KIM[1] + "\n")


async def kim(hub):
    import conftest
    conftest.PASSWORDS[("riverside-clinic", KIM[0])] = KIM[1]
    return await staff(hub, user=KIM[0])


async def quiet(client):
    """Everything that reached `client` before the answer to a request sent now (frames to one
    connection go out in order)."""
    await client.request({"type": "team", "id": "barrier"}, "team")
    frames, client.inbox = client.inbox, []
    return frames


async def ask(client, org="riverside-clinic"):
    return await client.request({"type": "availability", "org": org, "id": "av"}, "availability")


def audit_events(hub):
    return [json.loads(line) for line in carehub("audit", "export", "--data", str(hub.data)).stdout.splitlines()]


def test_the_widget_learns_whether_anyone_is_available(hub):
    async def scenario():
        widget = await Client.connect(hub)
        nobody = await ask(widget)
        assert nobody == {"type": "availability", "id": "av", "org": "riverside-clinic", "open": True, "staffAvailable": False,
                          "opensAt": None, "hours": None, "timeZone": None}

        nurse, _ = await staff(hub)
        assert (await ask(widget))["staffAvailable"] is True
        # Away is not available; the other organisation is not affected by either.
        away = await nurse.request({"type": "presence", "state": "away", "id": "p"}, "presence")
        assert away == {"type": "presence", "id": "p", "user": "nurse.joy", "name": "nurse.joy", "state": "away"}
        assert (await ask(widget))["staffAvailable"] is False
        coach, _ = await staff(hub, org="lotus-wellness", user="coach.sam")
        assert (await ask(widget, "lotus-wellness"))["staffAvailable"] is True
        assert (await ask(widget))["staffAvailable"] is False

        # A colleague hears each change; the team lists every account with its state.
        admin, _ = await staff(hub, user="dr.admin")
        team = await admin.request({"type": "team", "id": "t"}, "team")
        assert team["members"] == [
            {"user": "dr.admin", "name": "dr.admin", "role": "admin", "state": "available"},
            {"user": "nurse.joy", "name": "nurse.joy", "role": "staff", "state": "away"}]
        await nurse.request({"type": "presence", "state": "available", "id": "p2"}, "presence")
        assert (await admin.recv("presence")) == {"type": "presence", "user": "nurse.joy", "name": "nurse.joy", "state": "available"}
        await nurse.close()
        assert (await admin.recv("presence")) == {"type": "presence", "user": "nurse.joy", "name": "nurse.joy", "state": "offline"}
        assert not [frame for frame in await quiet(coach) if frame["type"] == "presence"]

        # Visitors cannot set or read presence; bad states are refused with the field named.
        patient, _ = await visitor(hub)
        refused = await patient.request({"type": "team", "id": "t"}, "team")
        assert refused["code"] == "forbidden"
        bad = await admin.request({"type": "presence", "state": "offline", "id": "b"}, "presence")
        assert bad["code"] == "invalid_field" and "'state'" in bad["message"]
        for client in (widget, coach, admin, patient):
            await client.close()

    run(scenario())


def test_a_nurse_claims_a_chat_and_transfers_it_to_a_colleague_with_a_note(workdir):
    add_kim(workdir)
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        async def scenario():
            joy, _ = await staff(hub)
            kim_client, _ = await kim(hub)
            # Two patients wait: the first is next, and each hears its place after its welcome.
            first = await Client.connect(hub)
            welcome = await first.request({"type": "hello", "org": "riverside-clinic", "id": "h"}, "welcome")
            assert not [frame for frame in first.inbox if frame["type"] == "queue"]
            room = welcome["conversation"]
            assert await first.recv("queue") == {"type": "queue", "room": room, "position": 1}
            second, other = await visitor(hub)
            assert (await second.recv("queue"))["position"] == 2

            # Joy takes it; Kim, a moment later, is told it is taken; both queues move.
            claimed = await joy.request({"type": "claim", "room": room, "id": "c"}, "claimed")
            assert claimed == {"type": "claimed", "id": "c", "room": room, "user": "nurse.joy"}
            taken = await kim_client.request({"type": "claim", "room": room, "id": "c"}, "claimed")
            assert taken["code"] == "conflict" and "already taken by nurse.joy" in taken["message"]
            assert (await first.recv("queue"))["position"] == 0
            assert (await second.recv("queue"))["position"] == 1
            seen = [frame for frame in await quiet(kim_client) if frame["type"] == "room_activity" and frame["room"] == room]
            assert seen[-1]["event"] == "claimed" and seen[-1]["assignedTo"] == "nurse.joy"

            # Joy hands it to Kim with a note; Kim hears it at once and again when she opens the room.
            moved = await joy.request({"type": "transfer", "room": room, "to": "nurse.kim", "note": NOTE, "id": "t"}, "transferred")
            assert moved == {"type": "transferred", "id": "t", "room": room, "to": "nurse.kim"}
            notice = await kim_client.recv("transferred")
            assert notice["room"] == room and notice["from"] == "nurse.joy" and notice["note"] == NOTE and notice["to"] == "nurse.kim"
            opened = await kim_client.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
            assert opened["handoff"]["note"] == NOTE and opened["handoff"]["from"] == "nurse.joy"
            unknown = await kim_client.request({"type": "transfer", "room": room, "to": "nobody", "id": "u"}, "transferred")
            assert unknown["code"] == "not_found"

            # Back to the queue: the patient waits again, behind the one who waited all along.
            back = await kim_client.request({"type": "transfer", "room": room, "to": None, "id": "q"}, "transferred")
            assert back["to"] is None
            assert (await first.recv("queue"))["position"] == 2
            # A staff answer takes the other one out of the queue, and the first moves up.
            await kim_client.request({"type": "subscribe", "room": other["conversation"], "id": "s2"}, "subscribed")
            await kim_client.request({"type": "send", "room": other["conversation"], "text": "Hello", "id": "m"}, "ack")
            assert (await second.recv("queue"))["position"] == 0
            assert (await first.recv("queue"))["position"] == 1
            # The patient never sees the note or who passed the chat to whom.
            assert NOTE not in repr(first.inbox) and not [f for f in first.inbox if f["type"] == "transferred"]
            for client in (joy, kim_client, first, second):
                await client.close()
            return room

        room = run(scenario())
    finally:
        hub.stop()
    events = [event for event in audit_events(hub) if event.get("target") == room]
    claimed = [event for event in events if event["action"] == "conversation.claimed"]
    transferred = [event["detail"] for event in events if event["action"] == "conversation.transferred"]
    assert [event["actor"] for event in claimed] == ["nurse.joy"]
    assert transferred == ["from=nurse.joy to=nurse.kim note=yes", "from=nurse.kim to=queue note=no"]
    assert "CANARY" not in repr(audit_events(hub)) and "CANARY" not in hub.log_text()
    # HIPAA organisation: the note is sealed at rest like messages.
    for path in (workdir / "data").rglob("*"):
        if path.is_file():
            assert b"CANARY-NOTE" not in path.read_bytes(), path


def test_under_assigned_rooms_a_transfer_takes_the_room_from_the_old_assignee(workdir):
    config = workdir / "pipeline.conf"
    config.write_text(config.read_text().replace("hipaa = on\n", "hipaa = on\nstaff_access = assigned\n", 1))
    add_kim(workdir)
    hub = Hub(workdir, config).start()
    try:
        async def scenario():
            patient, welcome = await visitor(hub)
            room = welcome["conversation"]
            admin, _ = await staff(hub, user="dr.admin")
            joy, _ = await staff(hub)
            kim_client, _ = await kim(hub)
            await admin.request({"type": "assign", "room": room, "user": "nurse.joy", "id": "a"}, "assigned")
            # Joy has not opened the room; it leaves her list all the same.
            await admin.request({"type": "transfer", "room": room, "to": "nurse.kim", "id": "t"}, "transferred")
            lost = await joy.recv("unsubscribed")
            assert lost == {"type": "unsubscribed", "room": room, "reason": "access_changed"}
            assert (await kim_client.recv("transferred"))["note"] is None
            refused = await joy.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
            assert refused["code"] == "forbidden"
            assert (await kim_client.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed"))["type"] == "subscribed"
            # Joy cannot claim a room she may not read.
            assert (await joy.request({"type": "claim", "room": room, "id": "c"}, "claimed"))["code"] == "forbidden"
            for client in (patient, admin, joy, kim_client):
                await client.close()

        run(scenario())
    finally:
        hub.stop()


def test_the_patient_sees_when_the_clinic_has_read_the_messages(hub):
    async def scenario():
        patient, welcome = await visitor(hub)
        room = welcome["conversation"]
        assert welcome["readSeq"] == 0
        await patient.request({"type": "send", "room": room, "text": "one", "id": "m1"}, "ack")
        await patient.request({"type": "send", "room": room, "text": "two", "id": "m2"}, "ack")
        nurse, _ = await staff(hub)
        await nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
        await nurse.send({"type": "read", "room": room, "seq": 2, "id": "r"})
        assert await patient.recv("read") == {"type": "read", "room": room, "seq": 2}
        beyond = await nurse.request({"type": "read", "room": room, "seq": 9, "id": "r9"}, "read")
        assert beyond["code"] == "invalid_field" and "'seq'" in beyond["message"]
        mine = await patient.request({"type": "read", "room": room, "seq": 1, "id": "pr"}, "read")
        assert mine["code"] == "forbidden"
        # A patient who comes back sees the receipt at once.
        resumed, again = await visitor(hub, token=welcome["token"])
        assert again["readSeq"] == 2
        for client in (patient, nurse, resumed):
            await client.close()

    run(scenario())


def test_a_message_left_while_nobody_is_there_waits_for_the_morning(workdir):
    config = workdir / "pipeline.conf"
    config.write_text(config.read_text().replace("abandon=2h", "abandon=1s", 1))
    hub = Hub(workdir, config).start()
    try:
        async def scenario():
            # Nobody is available: the patient leaves a message and closes the page.
            left = await Client.connect(hub)
            assert (await ask(left))["staffAvailable"] is False
            welcome = await left.request(
                {"type": "hello", "org": "riverside-clinic", "offline": True, "profile": {"name": "Ann Offline"}, "id": "h"}, "welcome")
            room = welcome["conversation"]
            await left.request({"type": "send", "room": room, "text": LEFT, "id": "m"}, "ack")
            await left.close()
            # Another patient opens a chat and leaves without writing: that one is abandoned.
            gone, other = await visitor(hub)
            await gone.close()
            nurse, _ = await staff(hub)
            deadline = time.time() + TIMEOUT * 3
            while True:
                rooms = {entry["room"]: entry for entry in (await nurse.request({"type": "rooms", "id": "r"}, "rooms"))["rooms"]}
                if rooms[other["conversation"]]["ended"]:
                    break
                assert time.time() < deadline, "the silent chat was never abandoned"
                await asyncio.sleep(0.5)
            # The message left is still waiting, marked as left while nobody was there.
            assert rooms[room]["ended"] is False and rooms[room]["offline"] is True and rooms[room]["unanswered"] == 1
            assert "offline" not in rooms[other["conversation"]]
            opened = await nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
            assert [entry["text"] for entry in opened["history"]] == [LEFT]
            await nurse.close()

        run(scenario())
    finally:
        hub.stop()


def test_outside_opening_hours_the_widget_is_told_when_the_clinic_opens(workdir):
    import datetime
    today = datetime.datetime.now(datetime.timezone.utc).date()
    day = today + datetime.timedelta(days=2)
    name = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][day.weekday()]
    config = workdir / "pipeline.conf"
    config.write_text(config.read_text().replace(
        "hipaa = on\n", f"hipaa = on\nhours = {name} 09:00-17:00\ntimezone = UTC\n", 1))
    hub = Hub(workdir, config).start()
    try:
        async def scenario():
            nurse, _ = await staff(hub)
            widget = await Client.connect(hub)
            closed = await ask(widget)
            opens = datetime.datetime.combine(day, datetime.time(9, 0), tzinfo=datetime.timezone.utc)
            assert closed["open"] is False and closed["staffAvailable"] is True
            assert closed["opensAt"] == int(opens.timestamp() * 1000)
            assert closed["hours"] == f"{name.capitalize()} 09:00–17:00" and closed["timeZone"] == "UTC"
            # Closed is information, not a refusal: a message can still be left.
            welcome = await widget.request({"type": "hello", "org": "riverside-clinic", "offline": True, "id": "h"}, "welcome")
            assert welcome["type"] == "welcome"
            for client in (nurse, widget):
                await client.close()

        run(scenario())
    finally:
        hub.stop()
