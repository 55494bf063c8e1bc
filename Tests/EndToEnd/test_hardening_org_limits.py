"""An organisation's limits (`limits …` in its section): new conversations per address, messages
per conversation; each refusal is `rate_limited`, counted in /metrics by limit."""

import asyncio

from conftest import TIMEOUT, Client, Hub, metrics, staff, visitor


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 3))



def test_new_conversations_and_messages_are_limited_per_address_and_conversation(workdir):
    config = workdir / "pipeline.conf"
    text = config.read_text()
    config.write_text(text.replace(
        "hipaa = off\n", "hipaa = off\nlimits conversations_per_address_per_minute=3 messages_per_second=1 message_burst=4\n", 1))
    hub = Hub(workdir, config).start()
    try:
        async def scenario():
            coach, _ = await staff(hub, "lotus-wellness", "coach.sam")
            patients = []
            for number in range(3):
                patients.append(await visitor(hub, "lotus-wellness"))
            flood = await Client.connect(hub)
            refused = await flood.request({"type": "hello", "org": "lotus-wellness", "id": "h"}, "welcome")
            assert refused["type"] == "error" and refused["code"] == "rate_limited", refused
            # The coach heard of three new chats, not of the refused one.
            opened = [await coach.recv("room_opened") for _ in range(3)]
            assert {frame["room"] for frame in opened} == {welcome["conversation"] for _, welcome in patients}
            # Another organisation is not affected.
            _, other = await visitor(hub, "riverside-clinic")
            assert other["conversation"]
            patient, welcome = patients[0]
            room = welcome["conversation"]
            replies = [await patient.request({"type": "send", "room": room, "text": f"m{n}", "id": f"m{n}"}, "ack") for n in range(6)]
            assert [reply["type"] for reply in replies][:4] == ["ack"] * 4
            assert replies[-1]["type"] == "error" and replies[-1]["code"] == "rate_limited"
            # The other patients' conversations have their own allowance.
            second, welcome2 = patients[1]
            assert (await second.request({"type": "send", "room": welcome2["conversation"], "text": "hi", "id": "z"}, "ack"))["type"] == "ack"
            for client in [coach, flood] + [p for p, _ in patients]:
                await client.close()
        run(scenario())
        text = metrics(hub)
        assert 'carehub_rate_limited_total{limit="conversations_address"} 1' in text
        assert 'carehub_rate_limited_total{limit="messages_conversation"}' in text
    finally:
        hub.stop()
