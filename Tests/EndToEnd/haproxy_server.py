"""A real load balancer for the multi-node tests: Debian's HAProxy (2.6), in the foreground
(`haproxy -db -f haproxy.cfg`) as a subprocess of the tests, with a configuration written here:
one HTTP frontend on a free loopback port in front of the given backends.

    with Haproxy(tmp_path, backends=[("127.0.0.1", hub_a.port), ("127.0.0.1", hub_b.port)]) as lb:
        websockets.connect(lb.url)             # ws://127.0.0.1:PORT/ws
        urllib.request.urlopen(lb.http_url + "/healthz")
        wait_until(lambda: lb.up_backends() == [("127.0.0.1", hub_b.port)])

As configured:
- HTTP mode; a WebSocket upgrade becomes a tunnel (`timeout tunnel 1h`), other traffic has
  `timeout client/server 60s`.
- round robin over the backends, named node1, node2, … in the order given (or a name given as a
  third element of the tuple); each checked with `GET /healthz` expecting 200 every 500 ms,
  `fall 2 rise 1`: a backend that stops answering is out within about a second, and back after
  one good check. The check is HTTP/1.1 with a Host header (`option httpchk GET /healthz` would
  send HTTP/1.0, which some servers refuse with 400, e.g. Python's websockets). HAProxy counts
  a server as up before its first check; start() and reload() wait for every server's first
  check, so up_backends() is true from the start.
- `X-Forwarded-For` (option forwardfor) and `X-Forwarded-Proto: http` on every request.
- an admin socket (`haproxy.sock` in the directory) for `up_backends()` / `server_states()`
  (`show servers state`) and `command()`.
- `reload(backends)` writes a new configuration and starts a new haproxy with `-sf` on the same
  port; the old process finishes its connections and exits.

HAProxy runs as root (the tests' user; no `user` directive), logs to its stdout, kept in
`haproxy.log` in the directory.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

HAPROXY = os.environ.get("HAPROXY_BIN", "/usr/sbin/haproxy")
TIMEOUT = 20
# srv_op_state in `show servers state`
OP_STATES = {0: "stopped", 1: "starting", 2: "running", 3: "stopping"}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Haproxy:
    """A running haproxy in `workdir/haproxy`; a context manager (start/stop)."""

    def __init__(self, workdir, backends, port=None, tunnel_timeout="1h", check_interval="500ms"):
        if not Path(HAPROXY).exists():
            raise AssertionError(f"no {HAPROXY}: run scripts/setup.sh (it installs haproxy)")
        self.directory = Path(workdir) / "haproxy"
        self.port = port or free_port()
        self.backends = self._named(backends)
        self.tunnel_timeout = tunnel_timeout
        self.check_interval = check_interval
        self.config = self.directory / "haproxy.cfg"
        self.admin_socket = self.directory / "haproxy.sock"
        self.log = self.directory / "haproxy.log"
        self.proc = None
        self.log_file = None

    @staticmethod
    def _named(backends):
        named = []
        for index, backend in enumerate(backends, 1):
            host, port, *name = backend
            named.append((name[0] if name else f"node{index}", host, int(port)))
        return named

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self):
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._check_config()
        self.log_file = open(self.log, "ab")
        self.proc = self._spawn()
        self._wait_ready(self.proc)
        self._wait_checked()
        return self

    def stop(self):
        """SIGTERM (haproxy's hard stop: it closes its listeners and connections and exits) and
        wait; SIGKILL if it does not exit in time. Returns the exit status."""
        status = None
        if self.proc is not None:
            status = _terminate(self.proc)
            self.proc = None
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None
        self.admin_socket.unlink(missing_ok=True)
        return status

    def reload(self, backends):
        """Serves `backends` instead: a new haproxy with the new configuration takes over the port
        (`-sf` old pid) and the old one exits once its connections are done."""
        self.backends = self._named(backends)
        self._write_config()
        self._check_config()
        old = self.proc
        self.proc = self._spawn("-sf", str(old.pid))
        self._wait_ready(self.proc)
        self._wait_checked()
        try:
            old.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            _terminate(old)
        return self

    def _spawn(self, *extra):
        return subprocess.Popen([HAPROXY, "-db", "-f", str(self.config), *extra], cwd=self.directory,
                                stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=subprocess.STDOUT)

    def _check_config(self):
        result = subprocess.run([HAPROXY, "-c", "-q", "-f", str(self.config)], stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=TIMEOUT)
        if result.returncode != 0:
            raise AssertionError(f"haproxy refused its configuration: {result.stdout}{result.stderr}\n"
                                 f"{self.config.read_text()}")

    def _wait_ready(self, proc):
        """Until this process answers on the admin socket and the frontend accepts connections."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"haproxy exited at start ({proc.returncode}): {self.log_text()}")
            try:
                info = self.command("show info")
                if f"\nPid: {proc.pid}\n" in "\n" + info and self._accepts():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"haproxy did not become ready within {TIMEOUT} s: {self.log_text()}")

    def _wait_checked(self):
        """Until every backend has had its first health check: haproxy counts a server as up
        until checks say otherwise, so before that, up_backends() would list a dead backend."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            statuses = self.check_statuses()
            if len(statuses) == len(self.backends) and all(s and s != "INI" for s in statuses.values()):
                return
            time.sleep(0.05)
        raise AssertionError(f"haproxy did not check every backend within {TIMEOUT} s: {self.check_statuses()}")

    def _accepts(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                return True
        except OSError:
            return False

    def _write_config(self):
        servers = "\n".join(f"    server {name} {host}:{port} check" for name, host, port in self.backends)
        self.config.write_text(f"""\
global
    log stdout format raw local0 info
    stats socket {self.admin_socket} mode 600 level admin
    stats timeout 30s
    pidfile {self.directory / "haproxy.pid"}

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel {self.tunnel_timeout}
    timeout http-request 10s
    timeout check 2s

frontend hub
    bind 127.0.0.1:{self.port}
    option forwardfor
    http-request set-header X-Forwarded-Proto http
    default_backend hubs

backend hubs
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host 127.0.0.1
    http-check expect status 200
    default-server inter {self.check_interval} fastinter {self.check_interval} downinter {self.check_interval} fall 2 rise 1
{servers}
""")

    # -- state -------------------------------------------------------------------------------

    def command(self, line):
        """One command on the admin socket; returns haproxy's answer."""
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(TIMEOUT)
            client.connect(str(self.admin_socket))
            client.sendall(line.encode() + b"\n")
            chunks = []
            while True:
                chunk = client.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def server_states(self):
        """{name: {"address": (host, port), "state": "running"|"stopped"|…, "admin": int,
        "health": int}} from `show servers state hubs`."""
        lines = [line for line in self.command("show servers state hubs").splitlines() if line.strip()]
        header = next(line for line in lines if line.startswith("#"))
        columns = header.lstrip("# ").split()
        states = {}
        for line in lines:
            if line.startswith("#") or not line[0].isdigit() or " " not in line:
                continue
            row = dict(zip(columns, line.split()))
            if "srv_name" not in row:
                continue
            states[row["srv_name"]] = {
                "address": (row["srv_addr"], int(row["srv_port"])),
                "state": OP_STATES.get(int(row["srv_op_state"]), row["srv_op_state"]),
                "admin": int(row["srv_admin_state"]),
                "health": int(row["srv_check_health"]),
            }
        return states

    def check_statuses(self):
        """{name: the last health check's status, e.g. "L7OK", "L4CON", "L7STS", "INI" before
        the first check} from `show stat`."""
        lines = self.command("show stat").splitlines()
        columns = lines[0].lstrip("# ").split(",")
        statuses = {}
        for line in lines[1:]:
            row = dict(zip(columns, line.split(",")))
            if row.get("pxname") == "hubs" and row.get("svname") not in ("FRONTEND", "BACKEND", None):
                statuses[row["svname"]] = row.get("check_status", "").lstrip("* ")
        return statuses

    def up_backends(self):
        """The (host, port) of the backends haproxy sends requests to now, in configured order."""
        states = self.server_states()
        return [(host, port) for name, host, port in self.backends
                if states.get(name, {}).get("state") == "running" and states[name]["admin"] == 0]

    def log_text(self):
        if self.log_file is not None and not self.log_file.closed:
            self.log_file.flush()
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _terminate(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("haproxy did not stop within the timeout after SIGTERM")
    return proc.returncode
