"""`carehub console`, the terminal staff client, against the real hub."""

import asyncio
import queue
import subprocess
import threading

from conftest import AUTHENTICATOR, BIN, PASSWORDS, TIMEOUT, expect_line, pump_lines, staff, visitor


class Console:
    def __init__(self, hub, org, user):
        self.proc = subprocess.Popen(
            [BIN, "console", "--connect", f"127.0.0.1:{hub.port}", "--org", org, "--user", user],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=pump_lines, args=(self.proc.stdout, self.lines), daemon=True).start()

    def type(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, fragment):
        return expect_line(self.lines, fragment, "console", lambda: f"stderr: {self.proc.stderr.read()}")


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


def test_a_wrong_password_is_one_clear_line_and_exit_status_1(hub):
    console = Console(hub, "riverside-clinic", "nurse.joy")
    console.type("not the password")
    console.type("")
    assert console.proc.wait(timeout=TIMEOUT) == 1
    assert "carehub: login failed:" in console.proc.stderr.read()
