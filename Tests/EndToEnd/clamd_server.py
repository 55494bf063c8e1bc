"""A real ClamAV daemon for the end-to-end tests: Debian's clamd, started in a temporary directory
with its own configuration and a signature file the tests write (no signature download is
possible), so that the EICAR test file and a canary are found as `CareHub.Test.EICAR.UNOFFICIAL`
and `CareHub.Test.Canary.UNOFFICIAL`. The tests can stop it and start it again."""

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

CLAMD = "/usr/sbin/clamd"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CANARY = b"CAREHUB-TEST-MALWARE-CANARY-7f3a"


class Clamd:
    """One clamd on a Unix socket in `directory`."""

    def __init__(self, directory: Path, stream_max="60M"):
        if not Path(CLAMD).exists():
            raise AssertionError("clamd is not installed: run scripts/setup.sh (it installs clamav-daemon)")
        self.directory = directory
        self.socket = str(directory / "clamd.sock")
        database = directory / "db"
        database.mkdir(parents=True, exist_ok=True)
        (database / "carehub-test.ndb").write_text(
            f"CareHub.Test.EICAR:0:*:{EICAR.hex()}\nCareHub.Test.Canary:0:*:{CANARY.hex()}\n")
        self.config = directory / "clamd.conf"
        self.config.write_text("\n".join([
            "Foreground yes",
            f"LocalSocket {self.socket}",
            f"DatabaseDirectory {database}",
            f"StreamMaxLength {stream_max}",
            f"LogFile {directory / 'clamd.log'}",
            "LogTime yes",
            "",
        ]))
        self.proc = None

    def start(self):
        if self.proc and self.proc.poll() is None:
            return self
        Path(self.socket).unlink(missing_ok=True)
        # clamd writes a warning to stderr for each stream over its limit: a file, not a pipe no one
        # reads (a full pipe would stop the daemon).
        errors = self.directory / "clamd.stderr"
        with errors.open("wb") as stderr:
            self.proc = subprocess.Popen([CLAMD, f"--config-file={self.config}"],
                                         stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"clamd exited at start: {errors.read_text(errors='replace')}")
            if self.ping():
                return self
            time.sleep(0.1)
        raise AssertionError("clamd did not answer PING within 60 s")

    def ping(self):
        try:
            with socket.socket(socket.AF_UNIX) as client:
                client.settimeout(2)
                client.connect(self.socket)
                client.sendall(b"zPING\0")
                return client.recv(16) == b"PONG\0"
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        Path(self.socket).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def clamd_daemon():
    directory = Path(tempfile.mkdtemp(prefix="carehub-clamd-"))
    daemon = Clamd(directory).start()
    yield daemon
    daemon.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def clamd(clamd_daemon):
    """The session's clamd, running; a test that stops it gets it started again."""
    clamd_daemon.start()
    yield clamd_daemon
    clamd_daemon.start()
