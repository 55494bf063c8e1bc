"""Room activity end to end: staff who have no room open hear of new chats and messages, without
their text, and the room list says who is waiting."""

import asyncio

from conftest import TIMEOUT, Client, staff

CANARY = "CANARY-a41c hip pain since the fall"
NAME = "CANARY-NAME Dora Bell"
REASON = "CANARY-REASON knee review"


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 3))


async def activity(client, room):
    """The next room_activity frame about `room`."""
    while True:
        frame = await client.recv("room_activity")
        if frame["room"] == room:
            return frame


def test_unsubscribed_staff_hear_of_a_new_chat_and_each_message_without_its_text(hub):
    async def scenario():
        nurse, _ = await staff(hub)
        coach, _ = await staff(hub, org="lotus-wellness", user="coach.sam")

        patient = await Client.connect(hub)
        welcome = await patient.request(
            {"type": "hello", "org": "riverside-clinic", "id": "h", "profile": {"name": NAME, "reason": REASON, "email": "dora@example.org"}},
            "welcome")
        room = welcome["conversation"]

        opened = await activity(nurse, room)
        assert opened == {
            "type": "room_activity", "room": room, "event": "opened", "startedAt": opened["startedAt"],
            "lastAt": opened["startedAt"], "lastFrom": None, "waitingSince": None, "unanswered": 0, "ended": False}

        first = await patient.request({"type": "send", "room": room, "text": CANARY, "id": "m1"}, "ack")
        one = await activity(nurse, room)
        assert one["event"] == "message" and one["unanswered"] == 1 and one["lastFrom"] == "visitor"
        assert one["waitingSince"] == first["at"] and one["lastAt"] == first["at"]
        second = await patient.request({"type": "send", "room": room, "text": CANARY + " again", "id": "m2"}, "ack")
        two = await activity(nurse, room)
        assert two["unanswered"] == 2 and two["waitingSince"] == first["at"] and two["lastAt"] == second["at"]
        # Not subscribed: the nurse got no message frame, and nothing she got holds the patient's words.
        assert not [frame for frame in nurse.inbox if frame["type"] == "message"]
        assert "CANARY" not in repr(nurse.inbox) and "CANARY" not in repr([opened, one, two])

        plain = await nurse.request({"type": "rooms", "id": "p"}, "rooms")
        assert [entry for entry in plain["rooms"] if entry["room"] == room and ("name" in entry or "reason" in entry)] == []
        listed = await nurse.request({"type": "rooms", "id": "r", "visitors": True}, "rooms")
        assert listed["orgName"] == "Riverside Family Clinic"
        entry = next(entry for entry in listed["rooms"] if entry["room"] == room)
        assert entry["name"] == NAME and entry["reason"] == REASON and "email" not in entry
        assert entry["unanswered"] == 2 and entry["waitingSince"] == first["at"] and entry["lastFrom"] == "visitor"

        await nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
        await nurse.request({"type": "send", "room": room, "text": "Coming", "id": "n1"}, "ack")
        answered = await activity(nurse, room)
        assert answered["unanswered"] == 0 and answered["waitingSince"] is None and answered["lastFrom"] == "staff"

        await nurse.request({"type": "end", "room": room, "id": "e"}, "ended")
        ended = await activity(nurse, room)
        assert ended["event"] == "ended" and ended["ended"] is True

        # The visitor and the other organisation's staff heard nothing of it (everything the
        # visitor was sent up to its `ended`, and the coach up to its room list, is read).
        await patient.recv("ended")
        await coach.request({"type": "rooms", "id": "r"}, "rooms")
        assert not [frame for frame in coach.inbox if frame["type"] == "room_activity"]
        assert not [frame for frame in patient.inbox if frame["type"] == "room_activity"]
        for client in (nurse, coach, patient):
            await client.close()

    run(scenario())
