"""Limits a stranger meets before the hub does costly work for them: logins per address (checked
before any password hash, which runs on threads of its own), connections per address, new
conversations per address and organisation, messages per conversation. Each refusal is
`rate_limited`, the hub keeps serving everyone else, and /metrics counts it by limit."""

import asyncio
import os

import websockets

from conftest import TIMEOUT, Client, Hub, login, metrics, staff, visitor


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 3))



def thread_names(hub):
    names = []
    for task in os.listdir(f"/proc/{hub.proc.pid}/task"):
        with open(f"/proc/{hub.proc.pid}/task/{task}/comm") as comm:
            names.append(comm.read().strip())
    return names


def test_logins_from_one_address_are_limited_before_any_hash_and_chat_goes_on(workdir):
    hub = Hub(workdir, workdir / "pipeline.conf")
    hub.extra_args = ["--max-logins-per-address", "5"]
    hub.start()
    try:
        async def scenario():
            patient, welcome = await visitor(hub, "lotus-wellness")
            room = welcome["conversation"]
            coach, _ = await staff(hub, "lotus-wellness", "coach.sam")  # the 1st login from this address
            await coach.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
            attacker = await Client.connect(hub)
            codes = []
            for attempt in range(8):
                reply = await login(attacker, "riverside-clinic", f"nobody{attempt}", password="guess-guess-guess", id_=f"x{attempt}")
                codes.append(reply.get("code"))
                # The chat between patient and coach goes on between the attacker's attempts.
                await patient.request({"type": "send", "room": room, "text": f"still here {attempt}", "id": f"m{attempt}"}, "ack")
                assert (await coach.recv("message"))["text"] == f"still here {attempt}"
            assert codes == ["auth_failed"] * 4 + ["rate_limited"] * 4, codes
            refused = await login(attacker, "lotus-wellness", "coach.sam", id_="y")
            assert refused["code"] == "rate_limited" and "retry in" in refused["message"], refused
            for client in (patient, coach, attacker):
                await client.close()
        run(scenario())
        assert 'carehub_rate_limited_total{limit="login_address"} 5' in metrics(hub)
        # Password hashing runs on threads of its own, never on the pool that carries messages.
        assert "carehub-kdf-0" in thread_names(hub)
    finally:
        hub.stop()


def test_logins_on_the_whole_hub_are_limited_whatever_the_address(workdir):
    """Each attempt comes through a listed proxy from an address of its own, so no address meets
    its own limit: the hub-wide one refuses the fourth."""
    hub = Hub(workdir, workdir / "pipeline.conf")
    hub.extra_args = ["--max-logins", "3", "--max-logins-per-address", "2", "--trusted-proxy", "127.0.0.1/32"]
    hub.start()
    try:
        async def scenario():
            codes = []
            for attempt in range(5):
                client = Client(await websockets.connect(hub.url, extra_headers={"X-Forwarded-For": f"203.0.113.{attempt + 1}"}))
                reply = await login(client, "lotus-wellness", f"nobody{attempt}", password="guess-guess-guess", id_=f"x{attempt}")
                codes.append(reply.get("code"))
                if reply.get("code") == "rate_limited":
                    assert "on this hub" in reply["message"] and "retry in" in reply["message"], reply
                await client.close()
            assert codes == ["auth_failed"] * 3 + ["rate_limited"] * 2, codes
        run(scenario())
        text = metrics(hub)
        assert 'carehub_rate_limited_total{limit="login_hub"} 2' in text, text
        assert 'limit="login_address"' not in text
    finally:
        hub.stop()


def test_connections_from_one_address_are_capped(workdir):
    hub = Hub(workdir, workdir / "pipeline.conf")
    hub.extra_args = ["--max-connections-per-address", "3"]
    hub.start()
    try:
        async def scenario():
            held = [await websockets.connect(hub.url) for _ in range(3)]
            # Refused before the upgrade, at no cost to the hub: 429 (libwebsockets answers in HTTP/1.0,
            # which the client library will not parse, so the request is written by hand).
            reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
            writer.write(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            status = await asyncio.wait_for(reader.readline(), TIMEOUT)
            assert b" 429 " in status, status
            writer.close()
            # The connections already open keep working; closing one frees a place.
            client = Client(held[0])
            assert (await client.request({"type": "hello", "org": "lotus-wellness", "id": "h"}, "welcome"))["type"] == "welcome"
            await held[1].close()
            for _ in range(100):  # the hub hears of the close a moment after the client
                try:
                    again = await websockets.connect(hub.url)
                    break
                except (websockets.exceptions.InvalidStatusCode, websockets.exceptions.InvalidMessage):
                    await asyncio.sleep(0.05)
            client = Client(again)
            assert (await client.request({"type": "hello", "org": "lotus-wellness", "id": "h"}, "welcome"))["type"] == "welcome"
            for socket in (held[0], held[2], again):
                await socket.close()
        run(scenario())
        assert 'carehub_rate_limited_total{limit="connections_address"}' in metrics(hub)
    finally:
        hub.stop()
