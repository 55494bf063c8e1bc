"""The hub's listener and HTTP responses: the address it binds, HSTS, CSP, web root confinement."""

import asyncio
import shutil
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websockets

from conftest import BIN, REPO, TIMEOUT, Hub, carehub


class ServedHub(Hub):
    """`carehub serve` with a chosen --listen and --web."""

    def __init__(self, workdir, listen="127.0.0.1:0", web=None, extra=()):
        super().__init__(workdir, workdir / "pipeline.conf")
        self.listen = listen
        self.web = web or (REPO / "web-static")
        self.extra = list(extra)

    def start(self):
        import threading
        self.log_file = open(self.log, "a")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--config", str(self.config), "--data", str(self.data), "--listen", self.listen,
             "--web", str(self.web), "--log-level", "debug", *self.extra],
            stdout=subprocess.PIPE, stderr=self.log_file, text=True, cwd=self.workdir)
        threading.Thread(target=self._pump, daemon=True).start()
        self.banner = self.expect_line("CareHub listening on")
        self.port = int(self.banner.split("://")[1].split("/")[0].rsplit(":", 1)[1])
        return self


def refused(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(TIMEOUT)
        try:
            probe.connect((host, port))
        except ConnectionRefusedError:
            return True
        return False


def headers(url, context=None):
    """Status and headers of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=TIMEOUT) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


def test_a_loopback_listener_binds_that_address_only_and_logs_it(workdir):
    hub = ServedHub(workdir, "127.0.0.1:0").start()
    try:
        assert "http://127.0.0.1:" in hub.banner
        assert not refused("127.0.0.1", hub.port)
        # 127.0.0.2 is loopback as well, but not the address asked for; ::1 neither.
        assert refused("127.0.0.2", hub.port)
        assert refused("::1", hub.port)
        assert f"listen.address=127.0.0.1:{hub.port}" in hub.log_text()
    finally:
        assert hub.stop() == 0


def test_an_ipv6_listener_in_brackets_accepts_on_that_address_only(workdir):
    hub = ServedHub(workdir, "[::1]:0").start()
    try:
        assert f"http://[::1]:{hub.port}/" in hub.banner
        assert refused("127.0.0.1", hub.port)

        async def scenario():
            async with websockets.connect(f"ws://[::1]:{hub.port}/ws") as ws:
                await ws.send('{"type":"hello","org":"riverside-clinic","id":"h"}')
                assert '"welcome"' in await asyncio.wait_for(ws.recv(), TIMEOUT)
        asyncio.run(scenario())
        assert f"listen.address=[::1]:{hub.port}" in hub.log_text()
    finally:
        assert hub.stop() == 0


RELAY = str(Path(BIN).with_name("carehub-relay"))


def relay(listen):
    """`carehub-relay --listen LISTEN` and the address its banner names."""
    process = subprocess.Popen([RELAY, "--listen", listen], stdout=subprocess.PIPE, text=True)
    banner = process.stdout.readline()
    assert banner.startswith("carehub-relay listening on ws://"), banner
    return process, banner.split("ws://")[1].split("/ws")[0]


@pytest.mark.parametrize("listen, host, others", [("127.0.0.1:0", "127.0.0.1", ["127.0.0.2", "::1"]), ("[::1]:0", "[::1]", ["127.0.0.1"])])
def test_the_relay_binds_the_address_given_only_and_names_it(listen, host, others):
    process, bound = relay(listen)
    try:
        assert bound.rsplit(":", 1)[0] == host, bound
        port = int(bound.rsplit(":", 1)[1])
        assert port > 0
        assert not refused(host.strip("[]"), port)
        for other in others:
            assert refused(other, port), other

        async def scenario():
            async with websockets.connect(f"ws://{bound}/ws") as ws:
                await ws.send('{"type":"hello","id":"h"}')
                assert '"welcome"' in await asyncio.wait_for(ws.recv(), TIMEOUT)
        asyncio.run(scenario())
    finally:
        process.terminate()
        assert process.wait(TIMEOUT) == 0


@pytest.mark.parametrize("arguments", [["--listen", "::1:8080"], ["--listen", "[127.0.0.1]:8080"], ["--listen", "127.0.0.1"], ["--listen"], ["x"]])
def test_the_relay_refuses_a_listen_address_it_cannot_bind_exactly(arguments):
    result = subprocess.run([RELAY, *arguments], capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 2 and "usage: carehub-relay" in result.stderr, result


@pytest.mark.parametrize("listen", ["::1:8080", "[127.0.0.1]:8080", "[::1]8080", "[]:8080"])
def test_listen_refuses_ipv6_without_brackets_and_brackets_without_ipv6(workdir, listen):
    result = carehub("serve", "--config", str(workdir / "pipeline.conf"), "--data", str(workdir / "data"),
                     "--listen", listen, check=False)
    assert result.returncode != 0
    assert "--listen" in result.stderr


def test_pages_may_connect_to_their_own_origin_only_and_plain_http_sends_no_hsts(hub):
    status, sent = headers(f"http://127.0.0.1:{hub.port}/")
    assert status == 200
    policy = sent["Content-Security-Policy"]
    assert "connect-src 'self';" in policy and "ws:" not in policy and "wss:" not in policy
    assert sent["Strict-Transport-Security"] is None


def test_every_https_response_carries_one_year_hsts(workdir):
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)
    hub = ServedHub(workdir, extra=["--tls-cert", str(cert), "--tls-key", str(key)]).start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        for path, expected in [("/", 200), ("/staff.html", 200), ("/metrics", 200), ("/no-such-page.html", 404)]:
            status, sent = headers(f"https://127.0.0.1:{hub.port}{path}", context)
            assert status == expected, path
            assert sent["Strict-Transport-Security"] == "max-age=31536000", path
    finally:
        assert hub.stop() == 0


def test_links_out_of_the_web_root_are_not_served(workdir):
    web = workdir / "web"
    shutil.copytree(REPO / "web-static", web)
    outside = workdir / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside secret")
    (outside / "index.html").write_text("outside page")
    (web / "leak.txt").symlink_to(outside / "secret.txt")
    (web / "passwd.txt").symlink_to("/etc/passwd")
    (web / "elsewhere").symlink_to(outside)
    hub = ServedHub(workdir, web=web).start()
    try:
        base = f"http://127.0.0.1:{hub.port}"
        for path in ["/leak.txt", "/passwd.txt", "/elsewhere/secret.txt", "/elsewhere/", "/../outside/secret.txt",
                     "/%2e%2e/outside/secret.txt", "/..%2f..%2f..%2fetc%2fpasswd"]:
            status, _ = headers(base + path)
            assert status == 404, path
        status, _ = headers(base + "/index.html")
        assert status == 200
    finally:
        assert hub.stop() == 0
