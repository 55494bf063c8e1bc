"""Numbers too large for any setting, bytes that are not UTF-8, and terminal escapes typed by a
patient, against the real hub: `config check`, a SIGHUP reload, an admin `pipeline.check`, and a
message on its way to a subscriber."""

import asyncio
import json
import signal

from conftest import TIMEOUT, carehub, staff, visitor

HUGE = "106751991167301d"


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 4))


def line_of(text, prefix):
    return next(index for index, line in enumerate(text.split("\n"), start=1) if line.startswith(prefix))


def wait_for_log(hub, fragment):
    async def poll():
        deadline = asyncio.get_event_loop().time() + TIMEOUT
        while fragment not in hub.log_text():
            assert asyncio.get_event_loop().time() < deadline, hub.log_text()
            await asyncio.sleep(0.05)
    return poll()


def test_config_check_reports_a_huge_duration_with_its_line(workdir):
    config = workdir / "pipeline.conf"
    text = config.read_text().replace("timeout=60m", f"timeout={HUGE}")
    config.write_text(text)
    result = carehub("config", "check", str(config), check=False)
    assert result.returncode != 0
    line = line_of(text, "stage idle     timeout=" + HUGE)
    assert f"{config}:{line}: expected timeout to be a duration from 1s to 30d" in result.stderr + result.stdout, result
    assert "Fatal error" not in result.stderr


def test_config_check_reports_invalid_utf8_with_its_line(workdir):
    config = workdir / "pipeline.conf"
    lines = config.read_bytes().split(b"\n")
    name_line = next(index for index, line in enumerate(lines) if line.startswith(b"name  = Lotus"))
    lines[name_line] = b"name  = Lotus \xff Studio"
    config.write_bytes(b"\n".join(lines))
    result = carehub("config", "check", str(config), check=False)
    assert result.returncode != 0
    assert f"{config}:{name_line + 1}: invalid UTF-8" in result.stderr + result.stdout, result


def test_a_reload_with_a_huge_duration_is_refused_and_the_hub_keeps_serving(hub):
    config = hub.config

    async def scenario():
        patient, welcome = await visitor(hub, "lotus-wellness")
        room = welcome["conversation"]
        text = config.read_text().replace("timeout=60m", f"timeout={HUGE}")
        config.write_text(text)
        hub.signal(signal.SIGHUP)
        await wait_for_log(hub, f"found timeout={HUGE}")
        assert f"{config}:{line_of(text, 'stage idle     timeout=' + HUGE)}:" in hub.log_text()
        assert hub.proc.poll() is None
        # The configuration in force stays: the organisation idles at 60 minutes, chats go on.
        _, session = await staff(hub, "lotus-wellness", "coach.sam")
        assert session["idleTimeoutSeconds"] == 3600
        ack = await patient.request({"type": "send", "room": room, "text": "still here", "id": "a"}, "ack")
        assert ack["type"] == "ack", ack

    run(scenario())


def test_an_admin_check_with_a_huge_duration_is_refused_and_others_are_served(hub):
    async def scenario():
        patient, welcome = await visitor(hub)
        room = welcome["conversation"]
        boss, _ = await staff(hub, "riverside-clinic", "dr.admin")
        current = await boss.request({"type": "admin", "op": "pipeline.get", "id": "g"}, "admin")
        section = current["result"]["text"]
        huge = section.replace("timeout=15m", f"timeout={HUGE}")
        refused = await boss.request({"type": "admin", "op": "pipeline.check", "id": "c", "text": huge}, "admin")
        assert refused["type"] == "error" and refused["code"] == "config_refused", refused
        line = line_of(huge, "stage idle")
        assert any(issue["line"] == line and f"timeout={HUGE}" in issue["message"] for issue in refused["issues"]), refused
        assert hub.proc.poll() is None
        # The same connection and the others keep working.
        again = await boss.request({"type": "admin", "op": "pipeline.get", "id": "g2"}, "admin")
        assert again["type"] == "admin"
        ack = await patient.request({"type": "send", "room": room, "text": "hello", "id": "a"}, "ack")
        assert ack["type"] == "ack", ack

    run(scenario())


def test_a_message_with_terminal_escapes_reaches_the_room_without_them(hub):
    async def scenario():
        nurse, _ = await staff(hub)
        patient, welcome = await visitor(hub)
        room = welcome["conversation"]
        await nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed")
        typed = "my rash\u001b[2K\u001b[1A is worse\u009b31m\r\nsince monday\u202e"
        ack = await patient.request({"type": "send", "room": room, "text": typed, "id": "m"}, "ack")
        assert ack["type"] == "ack", ack
        delivered = await nurse.recv("message")
        assert delivered["text"] == "my rash[2K[1A is worse31m\nsince monday"
        assert not any(ord(c) < 0x20 and c != "\n" or 0x7F <= ord(c) <= 0x9F for c in delivered["text"])
        # History holds the cleaned text too.
        again = await nurse.request({"type": "subscribe", "room": room, "id": "s2"}, "subscribed")
        assert [entry["text"] for entry in again["history"]] == [delivered["text"]]

    run(scenario())
