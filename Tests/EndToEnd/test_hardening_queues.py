"""Every per-connection queue has a bound. A client that sends faster than the hub handles its
frames is paused (TCP holds it back) and every frame is still answered in order; a client that
reads slower than the hub sends is closed with 4001 once its send queue passes
--max-send-queue-bytes, and /metrics counts it."""

import asyncio
import json
import time

import websockets

from conftest import TIMEOUT, Client, Hub, metrics, staff, visitor


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 3))



def wait_for_metric(hub, line):
    """Waits (a hang guard, not a timing assertion) until /metrics has `line`."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if line in metrics(hub).splitlines():
            return True
        time.sleep(0.05)
    return False


def test_a_console_that_stops_reading_is_closed_with_4001_and_counted(workdir):
    hub = Hub(workdir, workdir / "pipeline.conf")
    hub.extra_args = ["--max-send-queue-bytes", "65536"]
    hub.start()
    try:
        async def scenario():
            patient, welcome = await visitor(hub, "lotus-wellness")
            room = welcome["conversation"]
            text = "x" * 16000
            for index in range(10):
                await patient.request({"type": "send", "room": room, "text": f"{index} {text}", "id": f"m{index}"}, "ack")
            # A console that takes one frame and then reads no more: each subscribe answers with
            # the room's 160 kB history, which soon piles up behind its full socket.
            coach, _ = await staff(hub, "lotus-wellness", "coach.sam", max_queue=1, read_limit=4096)
            for index in range(300):
                await coach.send({"type": "subscribe", "room": room, "id": f"s{index}"})
            assert await asyncio.to_thread(wait_for_metric, hub, "carehub_slow_reader_closes_total 1"), metrics(hub)
            replies = 0
            try:
                while True:
                    frame = json.loads(await asyncio.wait_for(coach.ws.recv(), TIMEOUT))
                    assert frame["type"] == "subscribed" and frame["id"] == f"s{replies}", (frame["type"], frame.get("id"))
                    replies += 1
            except websockets.ConnectionClosed as closed:
                assert (closed.code, closed.reason) == (4001, "reading too slowly: send queue full")
            assert replies < 300
            # Nobody else is affected.
            await patient.request({"type": "send", "room": room, "text": "still here", "id": "after"}, "ack")
            await patient.close()
        run(scenario())
        assert wait_for_metric(hub, "carehub_send_queue_bytes 0"), metrics(hub)
        assert "carehub_slow_reader_closes_total 1" in metrics(hub).splitlines()
    finally:
        hub.stop()


def test_a_flood_of_frames_is_answered_whole_and_in_order(hub):
    async def scenario():
        patient, welcome = await visitor(hub, "lotus-wellness")
        room = welcome["conversation"]
        count = 500
        # Sent without waiting: far more than an inbox holds (64 frames).
        for index in range(count):
            await patient.send({"type": "send", "room": room, "text": f"flood {index}", "id": f"f{index}"})
        answered = []
        while len(answered) < count:
            frame = await patient.recv()
            if frame.get("id", "").startswith("f"):
                # Within the conversation's burst a message is stored, past it refused; never dropped.
                assert frame["type"] == "ack" or frame.get("code") == "rate_limited", frame
                answered.append(frame["id"])
        assert answered == [f"f{index}" for index in range(count)]
        await patient.close()
    run(scenario())
    assert wait_for_metric(hub, "carehub_connections_receive_paused 0"), metrics(hub)
