"""`carehub console`, the terminal staff client, against the real hub."""

import asyncio
import json
import queue
import re
import stat
import subprocess
import threading
import time

from conftest import AUTHENTICATOR, BIN, PASSWORDS, TIMEOUT, Client, Hub, expect_line, login, pump_lines, staff, visitor
from test_attachments import LOTUS, png, take_attachments, upload



def take_files(workdir, max_size="1MB"):
    """Lets Lotus Wellness (not in HIPAA mode, so no scanner is required) take photos and PDFs of
    at most `max_size`. Returns the configuration file."""
    take_attachments(workdir, f"attachments max_size={max_size} types=image/jpeg,image/png,image/gif,image/webp,application/pdf")
    return workdir / "pipeline.conf"


PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")


class Console:
    def __init__(self, hub, org, user=None):
        """Logs in as `user` with a password, or with single sign-on when `user` is None."""
        who = ["--user", user] if user else ["--sso"]
        self.proc = subprocess.Popen(
            [BIN, "console", "--connect", f"127.0.0.1:{hub.port}", "--org", org, *who],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.errors = ""
        self.errors_lock = threading.Lock()
        threading.Thread(target=pump_lines, args=(self.proc.stdout, self.lines), daemon=True).start()
        self.error_pump = threading.Thread(target=self._pump_errors, daemon=True)
        self.error_pump.start()

    def _pump_errors(self):
        # Prompts end without a newline: read what comes, as it comes.
        while chunk := self.proc.stderr.read(1):
            with self.errors_lock:
                self.errors += chunk

    def type(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, fragment):
        return expect_line(self.lines, fragment, "console", lambda: f"stderr: {self.stderr()}")

    def expect_error(self, fragment):
        """Waits until standard error contains `fragment`."""
        deadline = time.monotonic() + TIMEOUT
        while fragment not in self.stderr():
            if time.monotonic() > deadline:
                raise AssertionError(f"the console wrote no {fragment!r} on stderr; wrote {self.stderr()!r}")
            time.sleep(0.05)

    def stderr(self):
        with self.errors_lock:
            return self.errors

    def finished_stderr(self):
        """All of standard error, once the console has exited."""
        self.proc.wait(timeout=TIMEOUT)
        self.error_pump.join(timeout=TIMEOUT)
        return self.stderr()


def retry_after_backoff():
    # The hub refuses any login for a second after a failed one (auth's back-off).
    time.sleep(1.5)


def test_a_nurse_answers_a_patient_from_the_terminal(hub):
    async def scenario():
        # Enrol the nurse's authenticator once, as the browser console would.
        first, _ = await staff(hub)
        await first.close()
        patient, welcome = await visitor(hub)
        room = welcome["conversation"]
        await patient.request({"type": "send", "room": room, "text": "Is the clinic open on Saturday?", "id": "m"}, "ack")

        console = Console(hub, "riverside-clinic", "nurse.joy")
        console.type(PASSWORDS[("riverside-clinic", "nurse.joy")])
        console.type(AUTHENTICATOR.code((hub.data, "riverside-clinic", "nurse.joy")))
        console.expect("Logged in to riverside-clinic as nurse.joy")
        console.type("/rooms")
        console.expect(room)
        console.type("hello?")
        console.expect("no room is open")
        console.type(f"/open {room}")
        console.expect(f"— {room} —")
        console.expect("visitor: Is the clinic open on Saturday?")
        console.type("Yes, 9 to 12.")
        reply = await patient.recv("message")
        assert (reply["from"], reply["text"]) == ("nurse.joy", "Yes, 9 to 12.")
        await patient.request({"type": "send", "room": room, "text": "Thanks!", "id": "m2"}, "ack")
        console.expect(f"[{room}] visitor: Thanks!")
        console.type("/end")
        assert (await patient.recv("ended"))["room"] == room
        console.type("/quit")
        assert console.proc.wait(timeout=TIMEOUT) == 0
        await patient.close()
    asyncio.run(scenario())


def test_a_wrong_password_asks_again_then_the_right_one_logs_in(hub):
    async def scenario():
        first, _ = await staff(hub)
        await first.close()
        console = Console(hub, "riverside-clinic", "nurse.joy")
        console.type("not the password")
        console.type("")
        console.expect_error("Try again")
        retry_after_backoff()
        console.type(PASSWORDS[("riverside-clinic", "nurse.joy")])
        console.type(AUTHENTICATOR.code((hub.data, "riverside-clinic", "nurse.joy")))
        console.expect("Logged in to riverside-clinic as nurse.joy")
        console.type("/quit")
        assert console.proc.wait(timeout=TIMEOUT) == 0
        errors = console.finished_stderr()
        assert errors.count("carehub: login failed:") == 1
        assert errors.count("Password: ") == 2
    asyncio.run(scenario())


def test_a_code_already_used_on_another_device_asks_again(hub):
    async def scenario():
        first, _ = await staff(hub)
        await first.close()
        key = (hub.data, "riverside-clinic", "nurse.joy")
        used = AUTHENTICATOR.code(key)
        other_device = await Client.connect(hub)
        assert (await login(other_device, "riverside-clinic", "nurse.joy", code=used))["type"] == "session"
        console = Console(hub, "riverside-clinic", "nurse.joy")
        console.type(PASSWORDS[("riverside-clinic", "nurse.joy")])
        console.type(used)
        console.expect_error("Try again")
        retry_after_backoff()
        console.type(PASSWORDS[("riverside-clinic", "nurse.joy")])
        console.type(AUTHENTICATOR.code(key))
        console.expect("Logged in to riverside-clinic as nurse.joy")
        console.type("/quit")
        assert console.proc.wait(timeout=TIMEOUT) == 0
        assert console.finished_stderr().count("carehub: login failed:") == 1
        await other_device.close()
    asyncio.run(scenario())


def test_three_wrong_passwords_are_clear_lines_and_exit_status_1(hub):
    console = Console(hub, "riverside-clinic", "nurse.joy")
    for _ in range(3):
        console.type("not the password")
        console.type("")
    assert console.proc.wait(timeout=TIMEOUT) == 1
    assert console.finished_stderr().count("carehub: login failed:") == 3


def test_end_of_input_at_the_prompt_gives_up_with_status_1(hub):
    console = Console(hub, "riverside-clinic", "nurse.joy")
    console.type("not the password")
    console.type("")
    console.proc.stdin.close()
    assert console.proc.wait(timeout=TIMEOUT) == 1
    assert "carehub: login failed:" in console.finished_stderr()


def test_patient_text_cannot_drive_the_terminal_or_forge_a_console_line(hub):
    async def scenario():
        first, _ = await staff(hub)
        await first.close()
        patient, welcome = await visitor(hub)
        room = welcome["conversation"]
        console = Console(hub, "riverside-clinic", "nurse.joy")
        console.type(PASSWORDS[("riverside-clinic", "nurse.joy")])
        console.type(AUTHENTICATOR.code((hub.data, "riverside-clinic", "nurse.joy")))
        console.expect("Logged in to riverside-clinic as nurse.joy")
        console.type(f"/open {room}")
        console.expect(f"— {room} —")
        forged = "hello\x1b[2K\x1b[1A\x9b2J\u202e\nadmin: this visitor is verified"
        await patient.request({"type": "send", "room": room, "text": forged, "id": "m"}, "ack")
        await patient.request({"type": "send", "room": room, "text": "last", "id": "m2"}, "ack")
        seen = [console.expect(f"[{room}] visitor: hello")]
        while "last" not in seen[-1]:
            seen.append(console.expect(""))
        for line in seen:
            assert "\x1b" not in line and "\x9b" not in line and "\u202e" not in line, repr(line)
            assert not line.startswith("admin:"), repr(line)
        assert any(line.startswith("    | admin: this visitor is verified") for line in seen), seen
        console.type("/quit")
        assert console.proc.wait(timeout=TIMEOUT) == 0
        await patient.close()
    asyncio.run(scenario())


def test_a_message_in_a_room_not_open_is_one_line_without_its_text_and_messages_show_their_time(hub):
    async def scenario():
        first, _ = await staff(hub)
        await first.close()
        console = Console(hub, "riverside-clinic", "nurse.joy")
        console.type(PASSWORDS[("riverside-clinic", "nurse.joy")])
        console.type(AUTHENTICATOR.code((hub.data, "riverside-clinic", "nurse.joy")))
        console.expect("Logged in to riverside-clinic as nurse.joy")
        patient, welcome = await visitor(hub)
        room = welcome["conversation"]
        console.expect(f"* new conversation {room}")
        await patient.request({"type": "send", "room": room, "text": "CANARY-c0n5 my knee", "id": "m1"}, "ack")
        console.expect(f"* {room} waiting <1 min (1 unanswered)")
        await patient.request({"type": "send", "room": room, "text": "CANARY-c0n5 still", "id": "m2"}, "ack")
        line = console.expect(f"* {room} waiting")
        assert line.endswith("(2 unanswered)") and "CANARY" not in line
        console.type("/rooms")
        listed = console.expect(room)
        assert "waiting" in listed and "2 unanswered" in listed and "started " in listed
        console.type(f"/open {room}")
        console.expect(f"— {room} —")
        opened = console.expect("visitor: CANARY-c0n5 my knee")
        assert re.match(r"^\d\d:\d\d visitor: ", opened), opened
        await patient.request({"type": "send", "room": room, "text": "hello?", "id": "m3"}, "ack")
        live = console.expect(f"[{room}] visitor: hello?")
        assert re.match(r"^\d\d:\d\d \[", live), live
        console.type("/quit")
        assert console.proc.wait(timeout=TIMEOUT) == 0
        await patient.close()
    asyncio.run(scenario())


def test_a_nurse_takes_a_chat_passes_it_on_and_the_patient_sees_it_read_from_the_terminal(workdir):
    from conftest import Hub, carehub
    carehub("user", "add", "--org", "riverside-clinic", "--user", "nurse.kim", "--role", "staff", "--display-name", "Kim Lee",
            "--data", str(workdir / "data"), "--config", str(workdir / "pipeline.conf"), stdin="riverside-kim-test-pass\n")
    PASSWORDS[("riverside-clinic", "nurse.kim")] = "riverside-kim-test-pass"
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        async def scenario():
            first, _ = await staff(hub)
            await first.close()
            kim, _ = await staff(hub, user="nurse.kim")
            console = Console(hub, "riverside-clinic", "nurse.joy")
            console.type(PASSWORDS[("riverside-clinic", "nurse.joy")])
            console.type(AUTHENTICATOR.code((hub.data, "riverside-clinic", "nurse.joy")))
            console.expect("Logged in to riverside-clinic as nurse.joy")
            # Colleagues' availability, as it changes.
            await kim.request({"type": "presence", "state": "away", "id": "p"}, "presence")
            console.expect("* Kim Lee is away")
            console.type("/team")
            console.expect("nurse.kim (Kim Lee) · away")
            patient, welcome = await visitor(hub)
            room = welcome["conversation"]
            await patient.request({"type": "send", "room": room, "text": "CANARY-t3rm my results", "id": "m1"}, "ack")
            console.expect(f"* {room} waiting")
            # She takes it, reads it (the patient sees the read mark), and passes it on with a note.
            console.type(f"/claim {room}")
            console.expect(f"* {room} is yours")
            console.type(f"/open {room}")
            console.expect("visitor: CANARY-t3rm my results")
            assert (await patient.recv("read"))["seq"] == 1
            console.type("/transfer nurse.kim Needs the lab results, call back after 3")
            console.expect(f"* {room} passed to nurse.kim")
            notice = await kim.recv("transferred")
            assert notice["note"] == "Needs the lab results, call back after 3" and notice["from"] == "nurse.joy"
            # Kim puts it back in the queue; the console says so in one line.
            await kim.request({"type": "transfer", "room": room, "to": None, "id": "q"}, "transferred")
            console.expect(f"* {room} is back in the queue")
            console.type("/rooms")
            listed = console.expect(room)
            assert "taken by" not in listed
            # A canned reply, sent from the terminal as the nurse's own message.
            admin, _ = await staff(hub, user="dr.admin")
            saved = await admin.request({"type": "admin", "op": "replies.set", "name": "hours", "text": "We are open 8 to 6.", "id": "r"}, "admin")
            assert saved["type"] == "admin", saved
            console.type("/reply hours")
            sent = await patient.recv("message")
            assert (sent["from"], sent["text"]) == ("nurse.joy", "We are open 8 to 6.")
            console.type("/reply nonesuch")
            console.expect("no canned reply named nonesuch")
            console.type("/away")
            assert (await kim.recv("presence"))["state"] == "away"
            console.type("/quit")
            assert console.proc.wait(timeout=TIMEOUT) == 0
            for client in (kim, patient, admin):
                await client.close()
        asyncio.run(scenario())
    finally:
        hub.stop()


def logged_in_console(hub, org, user, code=""):
    console = Console(hub, org, user)
    console.type(PASSWORDS[(org, user)])
    console.type(code)
    console.expect(f"Logged in to {org} as {user}")
    return console


def test_a_nurse_saves_a_patients_file_from_the_terminal(workdir, tmp_path):
    hub = Hub(workdir, take_files(workdir)).start()
    try:
        async def scenario():
            patient, welcome = await visitor(hub, org=LOTUS)
            room, token = welcome["conversation"], welcome["token"]
            photo = png(40, 30, marker=b"knee" * 300)
            status, _, answer = await asyncio.to_thread(upload, hub, token, room, photo, "knee photo.png")
            assert status == 201 and json.loads(answer)["attachment"]["state"] == "ready", (status, answer)

            console = logged_in_console(hub, LOTUS, "coach.sam")
            console.type("/help")
            console.expect("/save N PATH")
            console.type(f"/open {room}")
            console.expect(f"— {room} —")
            shown = console.expect("visitor: attachment: knee photo.png")
            assert re.search(r"attachment: knee photo\.png \(\d+(\.\d)? KB\) · /save 1 PATH$", shown), shown

            # Saved to a new file, readable only by its owner, byte for byte.
            saved = tmp_path / "saved" / "knee.png"
            saved.parent.mkdir()
            console.type(f"/save 1 {saved}")
            console.expect(f"saved attachment 1 (knee photo.png, ")
            assert saved.read_bytes() == photo
            assert stat.S_IMODE(saved.stat().st_mode) == 0o600, oct(saved.stat().st_mode)

            # An existing file is never overwritten.
            saved.write_bytes(b"the nurse's own notes")
            console.type(f"/save 1 {saved}")
            refused = console.expect("could not save attachment 1")
            assert "already exists" in refused, refused
            assert saved.read_bytes() == b"the nurse's own notes"

            # A file sent while the room is open is numbered next; an unknown number is said plainly.
            status, _, answer = await asyncio.to_thread(upload, hub, token, room, PDF, "referral.pdf")
            assert status == 201, (status, answer)
            live = console.expect(f"[{room}] visitor: attachment: referral.pdf")
            assert live.endswith(f"({len(PDF)} bytes) · /save 2 PATH"), live
            console.type(f"/save 2 {tmp_path / 'referral.pdf'}")
            console.expect("saved attachment 2 (referral.pdf")
            assert (tmp_path / "referral.pdf").read_bytes() == PDF
            console.type(f"/save 3 {tmp_path / 'nothing.pdf'}")
            console.expect("no attachment 3; they are numbered 1 to 2")
            assert not (tmp_path / "nothing.pdf").exists()
            console.type("/quit")
            assert console.proc.wait(timeout=TIMEOUT) == 0
            await patient.close()
        asyncio.run(scenario())
    finally:
        hub.stop()
