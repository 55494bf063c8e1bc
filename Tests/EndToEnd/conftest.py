"""Fixtures for CareHub's end-to-end tests: the real `carehub` binary, real sockets, real files."""

import asyncio
import base64
import hashlib
import hmac
import struct
import time
import json
import os
import shutil
import signal
import subprocess
import threading
import urllib.request
import queue
import re
from pathlib import Path

import pytest
import websockets

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("CAREHUB_BIN", str(REPO / ".build" / "debug" / "carehub"))
TIMEOUT = 20  # seconds any single wait may take before the test fails instead of hanging

USERS = [
    ("riverside-clinic", "nurse.joy", "staff", "riverside-nurse-test-pass"),
    ("riverside-clinic", "dr.admin", "admin", "riverside-admin-test-pass"),
    ("lotus-wellness", "coach.sam", "staff", "lotus-coach-test-pass"),
]
PASSWORDS = {(org, user): password for org, user, _, password in USERS}

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def require_browser():
    """Selenium's webdriver module for the browser tests, which fail rather than skip without
    Chromium, its driver or Selenium: a run that tested no page must not pass."""
    missing = [f"{package} ({path})" for package, path in (("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER))
               if not os.access(path, os.X_OK)]
    try:
        from selenium import webdriver
    except ImportError as error:
        missing.append(f"python3-selenium ({error})")
        webdriver = None
    if missing:
        pytest.fail("browser tests need " + ", ".join(missing) + ": run scripts/setup.sh", pytrace=False)
    return webdriver


def metrics(hub):
    """The hub's /metrics text."""
    return urllib.request.urlopen(f"http://127.0.0.1:{hub.port}/metrics", timeout=TIMEOUT).read().decode()


def carehub(*args, stdin=None, check=True, cwd=None):
    """Runs a carehub command to completion and returns the CompletedProcess."""
    result = subprocess.run(
        [BIN, *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd or REPO
    )
    if check and result.returncode != 0:
        raise AssertionError(f"carehub {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def pump_lines(stream, lines):
    """Copies a process's output into a queue, line by line; None marks its end."""
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def expect_line(lines, fragment, who, details):
    """Waits for a line containing `fragment` in a queue fed by pump_lines and returns it;
    `details()` adds context to the failure."""
    seen = []
    while True:
        try:
            line = lines.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no line from the {who} with {fragment!r}; saw {seen}; {details()}")
        if line is None:
            raise AssertionError(f"the {who} exited before printing {fragment!r}; saw {seen}; {details()}")
        seen.append(line)
        if fragment in line:
            return line


class Hub:
    """A running `carehub serve` on a free loopback port."""

    def __init__(self, workdir: Path, config: Path):
        self.workdir = workdir
        self.config = config
        self.data = workdir / "data"
        self.log = workdir / "hub.log"
        self.proc = None
        self.port = None
        self.lines = queue.Queue()
        self.extra_args = []

    def start(self):
        self.log_file = open(self.log, "a")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--config", str(self.config), "--data", str(self.data),
             "--listen", "127.0.0.1:0", "--web", str(REPO / "web-static"), "--log-level", "debug",
             *self.extra_args],
            stdout=subprocess.PIPE, stderr=self.log_file, text=True, cwd=self.workdir,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        line = self.expect_line("CareHub listening on")
        self.port = int(line.split("://127.0.0.1:")[1].split("/")[0])
        return self

    def _pump(self):
        pump_lines(self.proc.stdout, self.lines)

    def expect_line(self, fragment):
        """Waits for a stdout line containing `fragment` and returns it."""
        return expect_line(self.lines, fragment, "hub", lambda: f"log: {self.log_text()}")

    def log_text(self):
        if not self.log_file.closed:
            self.log_file.flush()
        return self.log.read_text() if self.log.exists() else ""

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.port}/ws"

    def signal(self, number):
        self.proc.send_signal(number)

    def stop(self):
        """SIGTERM and wait; returns the exit status."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("hub did not stop within the timeout after SIGTERM")
        self.log_file.close()
        return self.proc.returncode


def local_exports(config: Path, workdir: Path):
    """Points the shipped pipeline.conf's transcript exports (export_dir=, export_key=, host paths
    that scripts/demo.sh creates) at a directory and a records certificate in `workdir`, so the
    tests run the shipped end-of-chat hook without touching the host."""
    text = config.read_text()
    if "export_dir=" not in text:
        return
    exports = workdir / "records"
    exports.mkdir(mode=0o700, exist_ok=True)
    text = re.sub(r"export_dir=\S+", f"export_dir={exports}", text)
    if "export_key=" in text:
        key, cert = workdir / "records-key.pem", workdir / "records-cert.pem"
        if not cert.exists():
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                            "-days", "1", "-subj", "/CN=records", "-keyout", str(key), "-out", str(cert)],
                           check=True, capture_output=True)
        text = re.sub(r"export_key=\S+", f"export_key={cert}", text)
    config.write_text(text)


@pytest.fixture
def workdir(tmp_path):
    config = tmp_path / "pipeline.conf"
    shutil.copy(REPO / "pipeline.conf", config)
    local_exports(config, tmp_path)
    for org, user, role, password in USERS:
        carehub("user", "add", "--org", org, "--user", user, "--role", role,
                "--data", str(tmp_path / "data"), "--config", str(config), stdin=password + "\n")
    return tmp_path


@pytest.fixture
def hub(workdir):
    running = Hub(workdir, workdir / "pipeline.conf").start()
    yield running
    running.stop()


class Client:
    """A WebSocket client speaking CareHub's JSON frames."""

    def __init__(self, ws):
        self.ws = ws
        self.inbox = []

    @classmethod
    async def connect(cls, hub, **kwargs):
        return cls(await websockets.connect(hub.url, max_size=None, **kwargs))

    async def send(self, frame):
        await self.ws.send(json.dumps(frame) if isinstance(frame, dict) else frame)

    async def recv(self, type_=None, timeout=TIMEOUT):
        """The next frame (of `type_`, if given; other frames are kept for later)."""
        for index, frame in enumerate(self.inbox):
            if type_ is None or frame["type"] == type_:
                return self.inbox.pop(index)
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
            frame = json.loads(raw)
            if type_ is None or frame["type"] == type_:
                return frame
            self.inbox.append(frame)

    async def request(self, frame, expect):
        """Sends a frame and returns the reply of type `expect` (or the error with its id).

        Frames that arrive first (deliveries, notices) are kept for later `recv` calls.
        """
        await self.send(frame)
        for index, reply in enumerate(self.inbox):
            if self._answers(reply, frame, expect):
                return self.inbox.pop(index)
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT))
            if self._answers(reply, frame, expect):
                return reply
            self.inbox.append(reply)

    @staticmethod
    def _answers(reply, frame, expect):
        expected = (expect,) if isinstance(expect, str) else expect
        return reply["type"] in expected or (reply["type"] == "error" and reply.get("id") == frame.get("id"))

    async def close(self):
        await self.ws.close()


async def visitor(hub, org="riverside-clinic", token=None):
    client = await Client.connect(hub)
    hello = {"type": "hello", "org": org, "id": "h"}
    if token:
        hello["token"] = token
    welcome = await client.request(hello, "welcome")
    assert welcome["type"] == "welcome", welcome
    return client, welcome


def totp(secret_b32, counter):
    """RFC 6238 code (HMAC-SHA1, 6 digits) for a time step, computed independently of the hub."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000)


class Authenticator:
    """The authenticator app of every test account: secrets from enrolment, one code per step."""

    def __init__(self):
        self.secrets = {}
        self.last_step = {}
        self.recovery_codes = {}

    def code(self, key):
        """A code for a step not used yet (the hub refuses replays), waiting for the next step if needed."""
        while True:
            now = int(time.time()) // 30
            step = max(now, self.last_step.get(key, 0) + 1)
            if step <= now + 1:
                self.last_step[key] = step
                return totp(self.secrets[key], step)
            time.sleep(1)


AUTHENTICATOR = Authenticator()


async def login(client, org, user, password=None, code=None, id_="l"):
    """Sends `login` and returns the reply: `session`, `enroll` or an error."""
    frame = {"type": "login", "org": org, "user": user, "password": password or PASSWORDS[(org, user)], "id": id_}
    if code:
        frame["totp"] = code
    return await client.request(frame, ("session", "enroll"))


async def staff(hub, org="riverside-clinic", user="nurse.joy", **connect):
    """A logged-in staff client; enrols the account's second factor when the hub asks for it.
    `connect` goes to websockets.connect (e.g. max_queue=1 for a client that soon stops reading)."""
    client = await Client.connect(hub, **connect)
    key = (hub.data, org, user)
    code = AUTHENTICATOR.code(key) if key in AUTHENTICATOR.secrets else None
    reply = await login(client, org, user, code=code)
    if reply["type"] == "enroll":
        AUTHENTICATOR.secrets[key] = reply["secret"]
        reply = await login(client, org, user, code=AUTHENTICATOR.code(key))
        AUTHENTICATOR.recovery_codes[key] = reply.get("recoveryCodes")
    assert reply["type"] == "session", reply
    return client, reply


def add_account(workdir, org, user, role, password, display_name=None):
    """Adds one more account to a test hub's data (before the hub starts), as `carehub user add`."""
    PASSWORDS[(org, user)] = password  # so that staff() can log it in
    named = ["--display-name", display_name] if display_name else []
    carehub("user", "add", "--org", org, "--user", user, "--role", role, *named,
            "--data", str(workdir / "data"), "--config", str(workdir / "pipeline.conf"), stdin=password + "\n")
