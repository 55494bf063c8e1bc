"""A reader who loses the right to a room stops receiving it at once, whichever path took the
right away: `carehub conversations assign` while the hub runs, or the organisation switched from
`staff_access = all` to `assigned` by a reload. Delivery checks the reader's right when it
delivers, and the HIPAA delivery record names only those who received the message."""

import asyncio
import json
import signal

from conftest import Hub, carehub, staff, visitor


def run(coroutine):
    return asyncio.run(coroutine)


def restrict(workdir):
    config = workdir / "pipeline.conf"
    config.write_text(config.read_text().replace("hipaa = on\n", "hipaa = on\nstaff_access = assigned\n", 1))
    return config


def delivered_to(hub, room, seq):
    """The readers the `phi.delivered` records of message `seq` in `room` name."""
    readers = set()
    for line in carehub("audit", "export", "--data", str(hub.data)).stdout.splitlines():
        event = json.loads(line)
        if event["action"] == "phi.delivered" and event.get("target") == room and f"seq={seq} " in event["detail"]:
            readers.update(event["detail"].split("readers=")[1].split(","))
    return readers


async def quiet(client):
    """The frames that reached `client` before the answer to a request it sends now: frames to a
    connection go out in order, so anything queued for it earlier has arrived by then."""
    await client.request({"type": "rooms", "id": "barrier"}, "rooms")
    frames, client.inbox = client.inbox, []
    return frames


async def nurse_in_her_room(hub):
    """A visitor's new room, assigned by the admin to nurse.joy, who has it open."""
    patient, welcome = await visitor(hub)
    room = welcome["conversation"]
    nurse, _ = await staff(hub)
    admin, _ = await staff(hub, user="dr.admin")
    await admin.request({"type": "assign", "room": room, "user": "nurse.joy", "id": "a"}, "assigned")
    assert (await nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed"))["type"] == "subscribed"
    return patient, room, nurse, admin


def test_a_room_reassigned_from_the_command_line_stops_reaching_the_old_assignee(workdir):
    hub = Hub(workdir, restrict(workdir)).start()
    try:
        async def scenario():
            patient, room, nurse, admin = await nurse_in_her_room(hub)
            assert (await admin.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed"))["type"] == "subscribed"
            await patient.request({"type": "send", "room": room, "text": "first", "id": "m1"}, "ack")
            assert (await nurse.recv("message"))["seq"] == 1
            assert (await admin.recv("message"))["seq"] == 1

            carehub("conversations", "assign", "--org", "riverside-clinic", "--data", str(hub.data), room, "dr.admin")
            # The admin's room list re-reads the record, as any later read of it would.
            await admin.request({"type": "rooms", "id": "r"}, "rooms")
            ack = await patient.request({"type": "send", "room": room, "text": "second", "id": "m2"}, "ack")
            assert ack["seq"] == 2
            assert (await admin.recv("message"))["seq"] == 2
            frames = await quiet(nurse)
            assert [f for f in frames if f["type"] == "message"] == [], frames
            assert {"type": "unsubscribed", "room": room, "reason": "access_changed"} in frames, frames
            # Not a member any more: later messages are not even considered for the nurse.
            await patient.request({"type": "send", "room": room, "text": "third", "id": "m3"}, "ack")
            assert (await admin.recv("message"))["seq"] == 3
            assert [f for f in await quiet(nurse) if f["type"] in ("message", "typing")] == []
            for client in (patient, nurse, admin):
                await client.close()
            return room
        room = run(scenario())
        assert delivered_to(hub, room, 1) == {"nurse.joy", "dr.admin"}
        assert delivered_to(hub, room, 2) == {"dr.admin"}
        assert delivered_to(hub, room, 3) == {"dr.admin"}
    finally:
        hub.stop()


def test_an_assignment_from_the_command_line_reaches_the_consoles_without_waiting_for_a_message(workdir):
    """The running hub reads the command's change from the journal: the nurse who lost the room is
    told at once, and the new assignee hears `assigned`, with no frame from anyone to prompt it."""
    hub = Hub(workdir, restrict(workdir)).start()
    try:
        async def scenario():
            patient, room, nurse, admin = await nurse_in_her_room(hub)

            done = carehub("conversations", "assign", "--org", "riverside-clinic", "--data", str(hub.data), room, "dr.admin")
            assert done.stdout.strip() == f"{room} assigned to dr.admin"
            assert await nurse.recv("unsubscribed") == {"type": "unsubscribed", "room": room, "reason": "access_changed"}
            told = await admin.recv("assigned")
            assert told["room"] == room and told["user"] == "dr.admin", told
            for client in (patient, nurse, admin):
                await client.close()
        run(scenario())
        events = [json.loads(line) for line in carehub("audit", "export", "--data", str(hub.data)).stdout.splitlines()]
        assigned = [e for e in events if e["action"] == "conversation.assigned"]
        assert [(e["actor"], e["detail"]) for e in assigned][-1] == ("cli:root", "user=dr.admin previous=nurse.joy"), assigned
    finally:
        hub.stop()


def test_switching_an_org_to_assigned_rooms_takes_unassigned_staff_out_of_them(hub):
    async def scenario():
        patient, welcome = await visitor(hub)
        room = welcome["conversation"]
        nurse, _ = await staff(hub)
        assert (await nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed"))["type"] == "subscribed"
        await patient.request({"type": "send", "room": room, "text": "before", "id": "m1"}, "ack")
        assert (await nurse.recv("message"))["seq"] == 1

        restrict(hub.workdir)
        hub.signal(signal.SIGHUP)
        hub.expect_line("configuration reloaded")

        await patient.request({"type": "send", "room": room, "text": "after", "id": "m2"}, "ack")
        frames = await quiet(nurse)
        assert [f for f in frames if f["type"] == "message"] == [], frames
        assert {"type": "unsubscribed", "room": room, "reason": "access_changed"} in frames, frames
        refused = await nurse.request({"type": "subscribe", "room": room, "id": "s2"}, "subscribed")
        assert refused["type"] == "error" and refused["code"] == "forbidden"
        for client in (patient, nurse):
            await client.close()
        return room
    room = run(scenario())
    assert delivered_to(hub, room, 1) == {"nurse.joy"}
    assert delivered_to(hub, room, 2) == set()
