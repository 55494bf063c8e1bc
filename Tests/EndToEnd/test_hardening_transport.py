"""Transport rules for a HIPAA organisation, against the real hub: plain ws:// only from loopback
or from a listed proxy that says it terminated TLS; X-Forwarded-For believed only from a listed
proxy; browsers only from the organisation's widget origins or the hub's own pages."""

import asyncio
import sqlite3

import websockets

from conftest import TIMEOUT, Client, Hub, login


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 3))


async def hello(hub, org="riverside-clinic", **kwargs):
    client = Client(await websockets.connect(hub.url, **kwargs))
    reply = await client.request({"type": "hello", "org": org, "id": "h"}, "welcome")
    await client.close()
    return reply


def addresses(hub, action):
    with sqlite3.connect(hub.data / "carehub.sqlite") as db:
        return [row[0] for row in db.execute("SELECT address FROM audit_events WHERE action = ? ORDER BY id", (action,))]


def test_behind_a_listed_proxy_a_hipaa_org_needs_tls_and_the_client_address_is_forwarded(workdir):
    hub = Hub(workdir, workdir / "pipeline.conf")
    hub.extra_args = ["--trusted-proxy", "127.0.0.1/32"]
    hub.start()
    try:
        async def scenario():
            plain = await hello(hub, extra_headers={"X-Forwarded-For": "203.0.113.7"})
            assert plain["type"] == "error" and plain["code"] == "insecure_transport", plain
            assert (await hello(hub, extra_headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}))["type"] == "welcome"
            # Not in HIPAA mode: plain is the organisation's own choice.
            assert (await hello(hub, "lotus-wellness", extra_headers={"X-Forwarded-For": "203.0.113.7"}))["type"] == "welcome"
            staff = Client(await websockets.connect(hub.url, extra_headers={"X-Forwarded-For": "198.51.100.4", "X-Forwarded-Proto": "https"}))
            refused = await login(staff, "riverside-clinic", "nobody", password="not-a-real-password")
            assert refused["code"] == "auth_failed"
            await staff.close()
        run(scenario())
        assert addresses(hub, "login.failure") == ["198.51.100.4"]
    finally:
        hub.stop()


def test_forwarded_headers_from_an_unlisted_peer_are_ignored(hub):
    async def scenario():
        # From loopback and not a listed proxy: the claim of a remote client is ignored, and
        # loopback is as good as TLS.
        assert (await hello(hub, extra_headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "http"}))["type"] == "welcome"
        staff = Client(await websockets.connect(hub.url, extra_headers={"X-Forwarded-For": "198.51.100.4"}))
        await login(staff, "riverside-clinic", "nobody", password="not-a-real-password")
        await staff.close()
    run(scenario())
    assert addresses(hub, "login.failure") == ["127.0.0.1"]


def test_browsers_reach_an_organisation_only_from_its_widget_sites_or_the_hubs_pages(workdir):
    config = workdir / "pipeline.conf"
    config.write_text(config.read_text().replace("hipaa = on\n", "hipaa = on\nwidget_origins = https://www.riverside.example\n", 1))
    hub = Hub(workdir, config).start()
    try:
        async def scenario():
            own = f"http://127.0.0.1:{hub.port}"
            assert (await hello(hub, origin="https://www.riverside.example"))["type"] == "welcome"
            assert (await hello(hub, origin=own))["type"] == "welcome"
            refused = await hello(hub, origin="https://evil.example")
            assert refused["type"] == "error" and refused["code"] == "origin_refused", refused
            # The other organisation lists no widget site: only the hub's own pages.
            refused = await hello(hub, "lotus-wellness", origin="https://www.riverside.example")
            assert refused["code"] == "origin_refused"
            # Staff consoles are the hub's own pages only.
            console = Client(await websockets.connect(hub.url, origin="https://www.riverside.example"))
            refused = await login(console, "riverside-clinic", "nurse.joy")
            assert refused["code"] == "origin_refused", refused
            await console.close()
            console = Client(await websockets.connect(hub.url, origin=own))
            assert (await login(console, "riverside-clinic", "nurse.joy"))["type"] == "enroll"
            await console.close()
        run(scenario())
    finally:
        hub.stop()
