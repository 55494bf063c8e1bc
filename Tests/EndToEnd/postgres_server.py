"""A real PostgreSQL server for the multi-node tests: Debian's PostgreSQL 15 (`initdb` + `pg_ctl`),
started in a fresh temporary directory on a free loopback port, with a role `carehub` (trust
authentication, no password) owning a database `carehub`.

    with PostgresServer(tmp_path) as pg:
        hub_config["database"] = pg.url        # postgresql://carehub@127.0.0.1:PORT/carehub
        pg.psql("create table t (n int)")      # as carehub on carehub; superuser=True for postgres
        pg.pause(); ...; pg.resume()           # the server down for a while, same port and data
        pg.kill()                              # SIGKILL to the server and all its processes

PostgreSQL refuses to run as root, and the tests run as root: the server's programs then run as
the `postgres` user (`runuser -u postgres --`), which owns the server's directory. That directory
is made with mkdtemp in the system's temporary directory, not in `workdir`: pytest's tmp_path lies
under /tmp/pytest-of-root, which only root may enter. `stop()` leaves no server process, copies the
server's log to `workdir/postgres.log` for a failing test's report and removes the directory.

The programs run with stdin from /dev/null and stdout and stderr to a file: `pg_ctl start` leaves
the server running in the background, and a pipe the server inherited would keep a reader waiting
for its end long after pg_ctl returned.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("CAREHUB_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
RUNUSER = "/usr/sbin/runuser"
SERVER_USER = "postgres"
TIMEOUT = 20


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresError(AssertionError):
    """A PostgreSQL program failed; the text has its command line and output."""


class PostgresServer:
    """One PostgreSQL server in its own temporary directory; a context manager (start/stop)."""

    role = "carehub"
    database = "carehub"

    def __init__(self, workdir, port=None):
        if not (PG_BIN / "initdb").exists():
            raise AssertionError(f"no PostgreSQL server in {PG_BIN}: run scripts/setup.sh (it installs postgresql)")
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.directory = None
        self.initialised = False
        self.as_root = os.geteuid() == 0

    # -- paths -------------------------------------------------------------------------------

    @property
    def data(self):
        return self.directory / "data"

    @property
    def socket_dir(self):
        return self.directory / "socket"

    @property
    def log(self):
        return self.directory / "server.log"

    @property
    def url(self):
        return f"postgresql://{self.role}@{self.host}:{self.port}/{self.database}"

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        """Initialises the server's directory on first use, then starts the server and waits
        until it accepts connections."""
        if not self.initialised:
            self._initialise()
        self._pg_ctl("start", "-w", "-t", str(TIMEOUT * 3), "-l", str(self.log), "-o",
                     f"-p {self.port} -k {self.socket_dir} -c listen_addresses={self.host}"
                     " -c max_connections=200 -c fsync=off")
        if not self.initialised:
            self.psql(f"create role {self.role} login createdb", superuser=True)
            self.psql(f"create database {self.database} owner {self.role}", superuser=True)
            self.initialised = True
        return self

    def _initialise(self):
        self.directory = Path(tempfile.mkdtemp(prefix="carehub-e2e-pg-"))
        os.chmod(self.directory, 0o755)
        self.socket_dir.mkdir()
        self.data.mkdir(mode=0o700)
        self.log.touch()
        if self.as_root:
            user = pwd.getpwnam(SERVER_USER)
            for path in (self.socket_dir, self.data, self.log):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._as_server_user("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                             "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")

    def stop(self):
        """Stops the server (fast shutdown, then SIGKILL if it lingers), keeps its log in
        `workdir/postgres.log` and removes its directory."""
        if self.directory is None:
            return
        if self.running():
            try:
                self._pg_ctl("stop", "-w", "-t", str(TIMEOUT), "-m", "fast")
            except PostgresError:
                self.kill()
        self.kill()  # any process left behind, e.g. backends of a server killed earlier
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.log, self.workdir / "postgres.log")
        except OSError:
            pass
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None
        self.initialised = False

    def pause(self):
        """Stops the server (`pg_ctl stop -m fast`: sessions end, committed data stays); `resume()`
        starts it again on the same port and data directory."""
        self._pg_ctl("stop", "-w", "-t", str(TIMEOUT), "-m", "fast")

    def resume(self):
        """Starts a paused (or killed) server again and waits until it accepts connections."""
        return self.start()

    def kill(self):
        """SIGKILL to the server and all its processes, as a crash would; `resume()` starts it
        again (the server then recovers from its write-ahead log)."""
        pids = self.server_pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + TIMEOUT
        while any(_alive(pid) for pid in pids):
            if time.monotonic() > deadline:
                raise AssertionError(f"PostgreSQL processes {pids} survived SIGKILL")
            time.sleep(0.05)
        if pids:
            # The killed server, orphaned when pg_ctl returned, may stay a zombie until init reaps
            # it (here init may never do so); its lock files name a process id that still exists,
            # and the next start would refuse ("Is another postmaster (PID …) running").
            (self.data / "postmaster.pid").unlink(missing_ok=True)
            for leftover in (f".s.PGSQL.{self.port}.lock", f".s.PGSQL.{self.port}"):
                (self.socket_dir / leftover).unlink(missing_ok=True)

    # -- state -------------------------------------------------------------------------------

    def postmaster_pid(self):
        """The server's main process id from postmaster.pid, or None when it is not running."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError, TypeError):
            return None
        return pid if _alive(pid) and _command(pid).startswith(("postgres", str(PG_BIN))) else None

    def server_pids(self):
        """The server's main process and all its descendants."""
        root = self.postmaster_pid()
        if root is None:
            return []
        children = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                parent = _parent(int(entry))
                if parent is not None:
                    children.setdefault(parent, []).append(int(entry))
        found, pending = [], [root]
        while pending:
            pid = pending.pop()
            found.append(pid)
            pending.extend(children.get(pid, []))
        return found

    def running(self):
        return self.postmaster_pid() is not None

    def accepting(self):
        """Whether the server accepts connections now (pg_isready over TCP)."""
        result = subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port),
                                 "-t", "2"], stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)
        return result.returncode == 0

    def log_text(self):
        if self.directory is not None and self.log.exists():
            return self.log.read_text(errors="replace")
        kept = self.workdir / "postgres.log"
        return kept.read_text(errors="replace") if kept.exists() else ""

    # -- SQL ---------------------------------------------------------------------------------

    def psql(self, sql, superuser=False, database=None, check=True):
        """Runs SQL over TCP with psql (unaligned, tuples only; ON_ERROR_STOP) and returns what it
        printed, stripped: as `carehub` on `carehub` through `url`, or as the superuser `postgres`
        (on the `postgres` database unless `database` is given). Raises PostgresError when psql
        fails (with check=False, returns the CompletedProcess instead)."""
        if superuser:
            target = ["-h", self.host, "-p", str(self.port), "-U", "postgres", "-d", database or "postgres"]
        else:
            url = self.url if database is None else f"postgresql://{self.role}@{self.host}:{self.port}/{database}"
            target = ["-d", url]
        command = [str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", *target, "-c", sql]
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT,
                                env={**os.environ, "PGCONNECT_TIMEOUT": "5"})
        if not check:
            return result
        if result.returncode != 0:
            raise PostgresError(f"psql {sql!r} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout.strip()

    # -- programs ----------------------------------------------------------------------------

    def _pg_ctl(self, *args):
        return self._as_server_user("pg_ctl", "-D", str(self.data), *args)

    def _as_server_user(self, program, *args):
        """Runs a PostgreSQL program to its end, as `postgres` when we are root; returns its output.
        Output goes to a file, never a pipe: a server started by pg_ctl would inherit the pipe."""
        command = [str(PG_BIN / program), *args]
        if self.as_root:
            command = [RUNUSER, "-u", SERVER_USER, "--", *command]
        with tempfile.TemporaryFile() as output:
            result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                    cwd=self.directory, timeout=TIMEOUT * 4)
            output.seek(0)
            text = output.read().decode(errors="replace")
        if result.returncode != 0:
            raise PostgresError(f"{program} {' '.join(args)} failed ({result.returncode}): {text}\n"
                                f"server log: {self.log_text()[-4000:]}")
        return text


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = _stat(pid)
    return state is not None and state[0] != "Z"


def _stat(pid):
    """(state, ppid) from /proc/PID/stat, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def _parent(pid):
    state = _stat(pid)
    return state[1] if state else None


def _command(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return ""
