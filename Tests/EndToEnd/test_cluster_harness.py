"""The multi-node harnesses on their own, without the hub: postgres_server.py against the real
PostgreSQL 15 (start, SQL as the carehub role, data kept across a pause and a kill, refused
connections while down, nothing left after stop) and haproxy_server.py against the real HAProxy
in front of two tiny Python backends (round robin, forwarded headers, a stopped backend taken out
and put back by the health checks, WebSocket upgrades, reload, a clean stop).
Needs no carehub binary."""

import asyncio
import http.server
import os
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
import websockets

from conftest import TIMEOUT
from haproxy_server import Haproxy
from postgres_server import PostgresError, PostgresServer


def wait_until(condition, what, timeout=TIMEOUT, interval=0.05):
    """Polls `condition` until it returns something true, which is returned; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s: {what} (last: {last!r})")


def port_free(port):
    """Nothing listens on the loopback port (connections left in TIME_WAIT do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# -- PostgreSQL ----------------------------------------------------------------------------------


@pytest.fixture
def pg(tmp_path):
    server = PostgresServer(tmp_path).start()
    yield server
    server.stop()


def test_postgres_starts_with_the_carehub_role_and_database(pg):
    assert pg.url == f"postgresql://carehub@127.0.0.1:{pg.port}/carehub"
    assert pg.psql("select 1") == "1"
    assert pg.psql("select current_user || ' ' || current_database()") == "carehub carehub"
    assert pg.psql("show server_version").startswith("15.")
    assert pg.psql("select inet_server_addr()::text") == "127.0.0.1/32"
    assert pg.psql("select pg_is_in_recovery()") == "f"
    # the socket directory is inside the server's temporary directory, as is the data
    assert pg.psql("show unix_socket_directories", superuser=True) == str(pg.socket_dir)
    assert pg.psql("show data_directory", superuser=True) == str(pg.data)
    # the server runs as postgres, never as root
    owners = {os.stat(f"/proc/{pid}").st_uid for pid in pg.server_pids()}
    assert owners and 0 not in owners
    assert "database system is ready to accept connections" in pg.log_text()


def test_postgres_reports_sql_errors(pg):
    with pytest.raises(PostgresError, match="does_not_exist"):
        pg.psql("select * from does_not_exist")


def test_postgres_keeps_data_across_pause_and_refuses_connections_while_paused(pg):
    pg.psql("create table notes (id int primary key, body text)")
    pg.psql("insert into notes values (1, 'before the pause')")
    port = pg.port

    pg.pause()
    assert not pg.running()
    refused = pg.psql("select 1", check=False)
    assert refused.returncode != 0
    assert "Connection refused" in refused.stderr or "could not connect" in refused.stderr, refused.stderr
    assert not pg.accepting()

    pg.resume()
    assert pg.port == port
    wait_until(pg.accepting, "PostgreSQL accepting connections again after resume")
    assert pg.psql("select body from notes where id = 1") == "before the pause"
    pg.psql("insert into notes values (2, 'after the pause')")
    assert pg.psql("select count(*) from notes") == "2"


def test_postgres_recovers_committed_data_after_a_kill(pg):
    pg.psql("create table notes (id int primary key); insert into notes values (1), (2), (3)")
    pids = pg.server_pids()
    assert len(pids) > 1  # the postmaster and its background processes

    pg.kill()
    assert not pg.running()
    assert not pg.accepting()
    assert pg.psql("select 1", check=False).returncode != 0

    pg.resume()
    assert pg.psql("select count(*) from notes") == "3"
    assert "database system was interrupted" in pg.log_text() or "redo" in pg.log_text()


def test_postgres_stop_leaves_no_process_and_no_directory(tmp_path):
    server = PostgresServer(tmp_path).start()
    server.psql("select 1")
    pids, directory, port = server.server_pids(), server.directory, server.port
    assert directory.is_dir()

    server.stop()
    assert not directory.exists()
    wait_until(lambda: not any(_alive(pid) for pid in pids), "PostgreSQL processes gone after stop")
    assert port_free(port)
    assert "database system is shut down" in (tmp_path / "postgres.log").read_text()
    server.stop()  # a second stop is harmless


def _alive(pid):
    """A process that exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# -- HAProxy -------------------------------------------------------------------------------------


class Backend:
    """A tiny HTTP server on loopback: /healthz answers 200, anything else answers with the
    backend's name and the forwarded headers it received. It can stop and start again on the
    same port."""

    def __init__(self, name):
        self.name = name
        self.port = None
        self.server = None
        self.requests = []  # (path, X-Forwarded-For, X-Forwarded-Proto) of each request but /healthz

    def start(self):
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if self.path != "/healthz":
                    backend.requests.append((self.path, self.headers.get("X-Forwarded-For"),
                                             self.headers.get("X-Forwarded-Proto")))
                body = b"ok" if self.path == "/healthz" else backend.name.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass  # the health check hangs up once it has the status line

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # connections the health checks reset

        self.server = Server(("127.0.0.1", self.port or 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def address(self):
        return ("127.0.0.1", self.port)


@pytest.fixture
def backends():
    started = [Backend("alpha").start(), Backend("beta").start()]
    yield started
    for backend in started:
        backend.stop()


@pytest.fixture
def lb(tmp_path, backends):
    proxy = Haproxy(tmp_path, [b.address for b in backends]).start()
    yield proxy
    proxy.stop()


def get(lb, path="/"):
    with urllib.request.urlopen(lb.http_url + path, timeout=TIMEOUT) as response:
        return response.status, response.read().decode()


def test_haproxy_balances_across_both_backends_with_forwarded_headers(lb, backends):
    alpha, beta = backends
    wait_until(lambda: lb.up_backends() == [alpha.address, beta.address], "both backends up")
    answers = [get(lb) for _ in range(10)]
    assert all(status == 200 for status, _ in answers)
    names = [body for _, body in answers]
    assert names.count("alpha") == 5 and names.count("beta") == 5, names  # round robin
    for path, forwarded_for, proto in alpha.requests + beta.requests:
        assert (path, forwarded_for, proto) == ("/", "127.0.0.1", "http")
    assert lb.url == f"ws://127.0.0.1:{lb.port}/ws"
    assert lb.http_url == f"http://127.0.0.1:{lb.port}"
    states = lb.server_states()
    assert {name: s["address"] for name, s in states.items()} == {"node1": alpha.address, "node2": beta.address}


def test_haproxy_takes_a_stopped_backend_out_and_uses_it_again(lb, backends):
    alpha, beta = backends
    wait_until(lambda: lb.up_backends() == [alpha.address, beta.address], "both backends up")

    alpha.stop()
    stopped = time.monotonic()
    wait_until(lambda: lb.up_backends() == [beta.address], "haproxy marking the stopped backend down")
    assert time.monotonic() - stopped < 5
    assert lb.server_states()["node1"]["state"] == "stopped"
    assert [get(lb)[1] for _ in range(10)] == ["beta"] * 10
    assert "node1 is DOWN" in lb.log_text()

    alpha.start()  # the same port again
    wait_until(lambda: lb.up_backends() == [alpha.address, beta.address], "haproxy marking the backend up again")
    served_before = len(alpha.requests)
    names = [get(lb)[1] for _ in range(10)]
    assert names.count("alpha") == 5 and names.count("beta") == 5, names
    assert len(alpha.requests) == served_before + 5


def test_haproxy_answers_503_when_no_backend_is_up(lb, backends):
    for backend in backends:
        backend.stop()
    wait_until(lambda: lb.up_backends() == [], "haproxy marking both backends down")
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(lb)
    assert refused.value.code == 503


def test_haproxy_reload_changes_the_backends_on_the_same_port(lb, backends):
    alpha, beta = backends
    port, first = lb.port, lb.proc
    lb.reload([beta.address])
    assert lb.port == port and lb.proc is not first
    assert first.poll() is not None  # the old process has exited
    assert lb.up_backends() == [beta.address]
    assert [get(lb)[1] for _ in range(4)] == ["beta"] * 4


def test_haproxy_stop_is_clean(tmp_path, backends):
    proxy = Haproxy(tmp_path, [b.address for b in backends]).start()
    proc, port = proxy.proc, proxy.port
    assert get(proxy)[0] == 200
    proxy.stop()
    assert proc.poll() is not None
    assert port_free(port)
    assert not proxy.admin_socket.exists()
    proxy.stop()  # a second stop is harmless


class WebSocketBackend:
    """An asyncio WebSocket echo server on loopback (its own thread and loop) that answers the
    health check at /healthz and prefixes each echo with its name."""

    def __init__(self, name):
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def health(path, headers):
            if path == "/healthz":
                # websockets 10.4 drops a response whose status is a plain int: HTTPStatus
                return http.HTTPStatus.OK, [("Content-Type", "text/plain")], b"ok"
            return None

        async def echo(ws, path):
            async for message in ws:
                await ws.send(f"{self.name}:{path}:{message}")

        async def serve():
            self.server = await websockets.serve(echo, "127.0.0.1", 0, process_request=health)
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()

        self.loop.run_until_complete(serve())
        self.loop.run_forever()

    def start(self):
        self.thread.start()
        assert self.ready.wait(TIMEOUT)
        return self

    def stop(self):
        async def close():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)


def test_haproxy_carries_websockets_to_both_backends(tmp_path):
    nodes = [WebSocketBackend("alpha").start(), WebSocketBackend("beta").start()]
    proxy = Haproxy(tmp_path, [("127.0.0.1", n.port) for n in nodes]).start()
    try:
        wait_until(lambda: len(proxy.up_backends()) == 2, "both WebSocket backends up")

        async def session(text):
            async with websockets.connect(proxy.url, open_timeout=TIMEOUT) as ws:
                await ws.send(text)
                first = await asyncio.wait_for(ws.recv(), TIMEOUT)
                await ws.send(text + "!")
                second = await asyncio.wait_for(ws.recv(), TIMEOUT)
                return first, second

        async def sessions():
            return [await session(f"m{i}") for i in range(4)]

        replies = asyncio.run(sessions())
        names = {first.split(":")[0] for first, _ in replies}
        assert names == {"alpha", "beta"}, replies
        for i, (first, second) in enumerate(replies):
            name = first.split(":")[0]
            assert (first, second) == (f"{name}:/ws:m{i}", f"{name}:/ws:m{i}!")  # one node per connection
    finally:
        proxy.stop()
        for node in nodes:
            node.stop()
