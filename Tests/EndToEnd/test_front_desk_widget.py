"""The front desk as a patient meets it in the widget, in real Chromium against the real hub:
the clinic closed (the next opening, the hours, a message left for the morning), open with nobody
there, open with a nurse (the place in the queue, the chat taken, the read receipt)."""

import asyncio
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from conftest import TIMEOUT, Client, Hub, staff

webdriver = pytest.importorskip("selenium.webdriver", reason="python3-selenium is installed by scripts/setup.sh")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as until  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from test_browser import browser, shot, text_of  # noqa: E402
from test_widget import CONTRAST_JS, press, set_value  # noqa: E402

ORG = "riverside-clinic"
CLINIC_ZONE = "America/Chicago"
# The patient's browser is elsewhere: the next opening is shown on the patient's clock.
PATIENT_ZONE = "Asia/Tokyo"
LEFT = ("Your message was left. The clinic will reply here when they are back; you can close this "
        "page and come back from this browser within 24 hours.")
NOBODY = "Nobody is available to chat right now."

# Shortens the widget's one-minute wait between two `availability` questions, so that a test sees
# the form change without waiting a minute; every other timer keeps its delay.
QUICK_MINUTE = """
(() => {
  const real = window.setTimeout;
  window.setTimeout = (fn, delay, ...args) => real(fn, delay === 60000 ? 500 : delay, ...args);
})();
"""


def wait(driver, timeout=TIMEOUT):
    # Pages re-render lists as frames arrive; an element found a moment ago may be gone.
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))


def focused(driver):
    return driver.execute_script(
        "const e = document.activeElement; return e.name || e.className || e.tagName")


def panel(driver):
    """What the patient sees of the front desk, read in one script call."""
    return driver.execute_script("""
        const q = s => document.querySelector(s);
        const shown = e => !!e && e.getClientRects().length > 0;
        return {
          notice: shown(q('.carehub-availability')) ? q('.carehub-availability-text').textContent : null,
          hours: shown(q('.carehub-availability')) ? q('.carehub-hours').textContent : null,
          prechat: shown(q('.carehub-prechat')),
          message: shown(q('.carehub-prechat [name=message]')),
          messageError: q('.carehub-message-error').textContent,
          leave: shown(q('.carehub-leave-send')),
          button: shown(q('.carehub-start')) ? q('.carehub-start').textContent : null,
          availability: q('.carehub-prechat').dataset.availability || null,
          chat: shown(q('.carehub-input')),
          queue: shown(q('.carehub-queue')) ? q('.carehub-queue').textContent : null,
          status: q('.carehub-status').textContent,
          announced: q('.carehub-announce').textContent,
          text: q('.carehub-panel').innerText,
        };""")


def mine(driver):
    """The patient's messages as (text, stored mark, read mark's label or None)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.carehub-mine')).map(li => {"
        "const read = li.querySelector('.carehub-read');"
        "return [li.querySelector('.carehub-text').textContent,"
        "(li.querySelector('.carehub-state, .carehub-retry') || {}).textContent,"
        "read ? read.getAttribute('role') + ':' + read.getAttribute('aria-label') + ':' + read.textContent : null]; })")


def storage_dump(driver):
    return driver.execute_script(
        "const dump = s => Object.fromEntries(Array.from({ length: s.length }, (_, i) => [s.key(i), s.getItem(s.key(i))]));"
        "return { local: dump(localStorage), session: dump(sessionStorage) };")


def patient_browser(*scripts):
    driver = browser()
    driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": PATIENT_ZONE})
    driver.execute_cdp_cmd("Emulation.setLocaleOverride", {"locale": "en-GB"})
    for source in scripts:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": source})
    return driver


def open_widget(driver, base):
    driver.get(base + "/widget-demo.html")
    wait(driver).until(until.element_to_be_clickable((By.CSS_SELECTOR, ".carehub-bubble"))).click()
    wait(driver).until(lambda d: panel(d)["prechat"])


def hub_with_hours(workdir, hours):
    """A hub whose first organisation (riverside-clinic) keeps the given opening hours."""
    config = workdir / "pipeline.conf"
    first, header, rest = config.read_text().partition("[org lotus-wellness]")
    first = re.sub(r"^(hours|timezone)\s*=.*\n", "", first, flags=re.M)
    first = first.replace("hipaa = on\n", f"hipaa = on\nhours = {hours}\ntimezone = {CLINIC_ZONE}\n", 1)
    config.write_text(first + header + rest)
    return Hub(workdir, config).start()


def closed_now():
    """Hours on one weekday four days from now, in the clinic's zone: closed until then."""
    day = datetime.now(ZoneInfo(CLINIC_ZONE)).date() + timedelta(days=4)
    opens = datetime(day.year, day.month, day.day, 8, 0, tzinfo=ZoneInfo(CLINIC_ZONE))
    return day.strftime("%a").lower() + " 08:00-09:00", opens


async def availability(hub):
    client = await Client.connect(hub)
    try:
        return await client.request({"type": "availability", "org": ORG, "id": "a"}, "availability")
    finally:
        await client.close()


@pytest.fixture
def closed_hub(workdir):
    hours, opens = closed_now()
    running = hub_with_hours(workdir, hours)
    running.opens = opens
    yield running
    running.stop()


@pytest.fixture
def open_hub(workdir):
    running = hub_with_hours(workdir, "mon-sun 00:00-24:00")
    yield running
    running.stop()


def test_closed_a_message_left_on_the_keyboard_waits_for_the_morning(closed_hub):
    hub = closed_hub
    loop = asyncio.new_event_loop()
    patient = patient_browser()
    nurse = None
    try:
        base = f"http://127.0.0.1:{hub.port}"
        answer = loop.run_until_complete(availability(hub))
        assert answer["open"] is False and answer["opensAt"] == int(hub.opens.timestamp() * 1000), answer
        assert answer["timeZone"] == CLINIC_ZONE and answer["hours"], answer

        # On the keyboard: Tab reaches the bubble, Enter opens the panel with the focus inside.
        patient.get(base + "/widget-demo.html")
        wait(patient).until(until.element_to_be_clickable((By.CSS_SELECTOR, ".carehub-bubble")))
        press(patient, Keys.TAB)
        assert focused(patient) == "carehub-bubble"
        press(patient, Keys.ENTER)
        wait(patient).until(lambda d: panel(d)["notice"])
        assert focused(patient) == "name"

        # The next opening on the patient's own clock (Tokyo), with the clinic's hours and zone.
        opens_here = hub.opens.astimezone(ZoneInfo(PATIENT_ZONE))
        days = (opens_here.date() - datetime.now(ZoneInfo(PATIENT_ZONE)).date()).days
        day = {0: "today", 1: "tomorrow"}.get(days, opens_here.strftime("%A"))
        seen = panel(patient)
        assert seen["notice"] == f"We're closed now. We open again {day} at {opens_here:%H:%M}.", seen
        assert seen["hours"] == f"Opening hours: {answer['hours']} (America/Chicago time)", seen
        assert seen["message"] and seen["leave"] and seen["button"] is None, seen
        assert "We're closed now." in seen["announced"], seen
        for promise in ("shortly", "as soon as", "Start chat"):
            assert promise not in seen["text"], seen
        low = [r for r in patient.execute_script(CONTRAST_JS) if r["ratio"] < 4.5]
        assert low == [], low
        shot(patient, "front-desk-closed")

        # Escape closes the panel and gives the focus back to the bubble; Enter opens it again.
        press(patient, Keys.ESCAPE)
        wait(patient).until(lambda d: not d.find_element(By.CSS_SELECTOR, ".carehub-panel").is_displayed())
        assert focused(patient) == "carehub-bubble"
        press(patient, Keys.ENTER)
        wait(patient).until(lambda d: panel(d)["notice"])

        # The form asks for the message: leaving it out is said in plain words.
        press(patient, "Pat Example", Keys.TAB, "pat@example.org", Keys.TAB, "Refill of my prescription")
        press(patient, Keys.TAB, Keys.TAB, Keys.ENTER)
        wait(patient).until(lambda d: panel(d)["messageError"] == "Please write your message.")
        assert focused(patient) == "message"
        assert panel(patient)["prechat"] and not panel(patient)["chat"]
        press(patient, "Could someone call me about my refill tomorrow?", Keys.TAB, Keys.ENTER)

        wait(patient).until(lambda d: panel(d)["status"] == LEFT)
        wait(patient).until(lambda d: mine(d) == [["Could someone call me about my refill tomorrow?", "✓", None]])
        seen = panel(patient)
        assert seen["chat"] and not seen["prechat"], seen
        assert LEFT in seen["announced"], seen
        assert focused(patient) == "carehub-input"
        assert "shortly" not in seen["text"] and "as soon as" not in seen["text"], seen
        shot(patient, "front-desk-message-left")

        # Only the reconnect token is kept in the browser, never the message or the answers.
        dump = storage_dump(patient)
        kept = " ".join(list(dump["local"].values()) + list(dump["session"].values()))
        for private in ("refill", "Pat Example", "pat@example.org", "prescription"):
            assert private not in kept, dump
        assert list(dump["local"]) == [f"carehub.widget.{base}.{ORG}"], dump

        # In the morning the nurse logs in: the room is listed as a message left, with its text.
        nurse, _ = loop.run_until_complete(staff(hub))
        rooms = loop.run_until_complete(nurse.request({"type": "rooms", "visitors": True, "id": "r"}, "rooms"))["rooms"]
        assert len(rooms) == 1 and rooms[0]["offline"] is True, rooms
        assert rooms[0]["name"] == "Pat Example" and rooms[0]["reason"] == "Refill of my prescription", rooms
        room = rooms[0]["room"]
        subscribed = loop.run_until_complete(nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed"))
        assert [(e["from"], e["text"]) for e in subscribed["history"]] == [
            ("visitor", "Could someone call me about my refill tomorrow?")], subscribed
        assert subscribed["visitor"]["email"] == "pat@example.org", subscribed

        # The page is still open: the answer arrives and the chat goes on as any other.
        loop.run_until_complete(nurse.request({"type": "send", "room": room, "text": "Yes, at 9.", "id": "n1"}, "ack"))
        wait(patient).until(lambda d: "Yes, at 9." in text_of(d, ".carehub-theirs .carehub-text"))
        wait(patient).until(lambda d: panel(d)["status"] == "Connected.")
        box = patient.find_element(By.CSS_SELECTOR, ".carehub-input")
        box.send_keys("Thank you", Keys.ENTER)
        wait(patient).until(lambda d: ["Thank you", "✓", None] in mine(d))
    finally:
        patient.quit()
        if nurse:
            loop.run_until_complete(nurse.close())
        loop.close()


def test_open_with_nobody_there_offers_to_leave_a_message(open_hub):
    hub = open_hub
    loop = asyncio.new_event_loop()
    patient = patient_browser(QUICK_MINUTE)
    nurse = None
    try:
        base = f"http://127.0.0.1:{hub.port}"
        answer = loop.run_until_complete(availability(hub))
        assert answer["open"] is True and answer["staffAvailable"] is False and answer["opensAt"] is None, answer

        open_widget(patient, base)
        wait(patient).until(lambda d: panel(d)["notice"] == NOBODY)
        assert panel(patient)["availability"] == "nobody"
        seen = panel(patient)
        # Leaving a message comes first; waiting for someone to be free is the other choice.
        assert seen["message"] and seen["leave"] and seen["button"] == "Wait for someone to be free", seen
        assert seen["hours"] == f"Opening hours: {answer['hours']} (America/Chicago time)", seen
        assert NOBODY in seen["announced"], seen
        for promise in ("shortly", "as soon as", "Start chat", "closed"):
            assert promise not in seen["text"], seen
        low = [r for r in patient.execute_script(CONTRAST_JS) if r["ratio"] < 4.5]
        assert low == [], low
        # On a phone the longer form scrolls inside the panel, which stays in the viewport.
        patient.set_window_size(390, 844)
        fits = patient.execute_script(
            "const r = document.querySelector('.carehub-panel').getBoundingClientRect();"
            "return r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight")
        assert fits
        shot(patient, "front-desk-nobody-available")

        # The message's limit is checked in the form, in UTF-8 bytes: 5,462 "€" are 16,386.
        set_value(patient, ".carehub-prechat [name=name]", "Pat Example")
        set_value(patient, ".carehub-prechat [name=message]", "€" * 5462)
        patient.find_element(By.CSS_SELECTOR, ".carehub-leave-send").click()
        wait(patient).until(lambda d: panel(d)["messageError"] == "Your message is too long. Please shorten it or send it in parts.")
        assert patient.find_element(By.NAME, "message").get_attribute("aria-invalid") == "true"
        assert panel(patient)["prechat"] and not panel(patient)["chat"]
        set_value(patient, ".carehub-prechat [name=message]", "€" * 5461)
        assert panel(patient)["messageError"] == ""
        set_value(patient, ".carehub-prechat [name=message]", "")
        patient.find_element(By.NAME, "name").click()

        # A nurse logs in while the form shows: it is asked again and offers the chat itself.
        nurse, _ = loop.run_until_complete(staff(hub))
        wait(patient).until(lambda d: panel(d)["button"] == "Start chat")
        seen = panel(patient)
        assert seen["notice"] is None and not seen["message"] and not seen["leave"], seen
        assert patient.find_element(By.NAME, "name").get_attribute("value") == "Pat Example"
    finally:
        patient.quit()
        if nurse:
            loop.run_until_complete(nurse.close())
        loop.close()


def test_open_with_a_nurse_queue_place_taken_and_read(open_hub):
    hub = open_hub
    loop = asyncio.new_event_loop()
    patient = patient_browser()
    nurse = None
    try:
        base = f"http://127.0.0.1:{hub.port}"
        nurse, _ = loop.run_until_complete(staff(hub))
        assert loop.run_until_complete(availability(hub))["staffAvailable"] is True

        # Someone is there: the pre-chat form as ever, with nothing to warn about.
        open_widget(patient, base)
        wait(patient).until(lambda d: panel(d)["availability"] == "open")
        patient.find_element(By.NAME, "name").send_keys("Pat Example")
        patient.find_element(By.NAME, "reason").send_keys("Question about my prescription")
        seen = panel(patient)
        assert seen["notice"] is None and not seen["message"] and not seen["leave"] and seen["button"] == "Start chat", seen
        patient.find_element(By.CSS_SELECTOR, ".carehub-start").click()

        # The patient's place in the queue, shown and announced.
        wait(patient).until(lambda d: panel(d)["queue"] == "You are number 1 in the queue.")
        assert "You are number 1 in the queue." in panel(patient)["announced"]
        assert re.search(r"^Connected\.", panel(patient)["status"]), panel(patient)
        shot(patient, "front-desk-queue")

        # The nurse takes the chat.
        room = loop.run_until_complete(nurse.request({"type": "rooms", "id": "r"}, "rooms"))["rooms"][0]["room"]
        claimed = loop.run_until_complete(nurse.request({"type": "claim", "room": room, "id": "c"}, "claimed"))
        assert claimed["type"] == "claimed", claimed
        wait(patient).until(lambda d: panel(d)["queue"] == "A member of the team has your chat.")
        assert "A member of the team has your chat." in panel(patient)["announced"]

        # Stored is ✓; read by the clinic is a mark of its own, once the nurse has seen it.
        box = patient.find_element(By.CSS_SELECTOR, ".carehub-input")
        box.send_keys("Can I take it with food?", Keys.ENTER)
        wait(patient).until(lambda d: mine(d) == [["Can I take it with food?", "✓", None]])
        box.send_keys("And in the evening?", Keys.ENTER)
        wait(patient).until(lambda d: ["And in the evening?", "✓", None] in mine(d))
        subscribed = loop.run_until_complete(nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed"))
        first = [e["seq"] for e in subscribed["history"] if e["text"] == "Can I take it with food?"][0]
        loop.run_until_complete(nurse.send({"type": "read", "room": room, "seq": first}))
        read = "img:Read by the clinic:✓✓ Read"
        wait(patient).until(lambda d: mine(d) == [["Can I take it with food?", "✓", read], ["And in the evening?", "✓", None]])
        low = [r for r in patient.execute_script(CONTRAST_JS) if r["ratio"] < 4.5]
        assert low == [], low
        shot(patient, "front-desk-read")

        # Back on the page later: the receipt comes with the resumed chat.
        patient.refresh()
        wait(patient).until(lambda d: mine(d) == [["Can I take it with food?", "✓", read], ["And in the evening?", "✓", None]])
        last = max(e["seq"] for e in subscribed["history"])
        loop.run_until_complete(nurse.send({"type": "read", "room": room, "seq": last}))
        wait(patient).until(lambda d: mine(d) == [["Can I take it with food?", "✓", read], ["And in the evening?", "✓", read]])
    finally:
        patient.quit()
        if nurse:
            loop.run_until_complete(nurse.close())
        loop.close()


def test_open_with_nobody_there_the_patient_may_wait_instead(open_hub):
    hub = open_hub
    loop = asyncio.new_event_loop()
    patient = patient_browser()
    nurse = None
    try:
        base = f"http://127.0.0.1:{hub.port}"
        open_widget(patient, base)
        wait(patient).until(lambda d: panel(d)["notice"] == NOBODY)
        patient.find_element(By.NAME, "name").send_keys("Pat Example")
        patient.find_element(By.NAME, "message").send_keys("Is the clinic open on Saturday?")
        patient.find_element(By.CSS_SELECTOR, ".carehub-start").click()

        # A chat like any other, waiting in the queue; what was written is its first message.
        wait(patient).until(lambda d: mine(d) == [["Is the clinic open on Saturday?", "✓", None]])
        wait(patient).until(lambda d: panel(d)["queue"] == "You are number 1 in the queue.")
        seen = panel(patient)
        assert seen["chat"] and not seen["prechat"], seen
        assert seen["status"] == "Connected. A member of our team will answer as soon as they can.", seen
        assert "shortly" not in seen["text"] and LEFT not in seen["text"], seen

        nurse, _ = loop.run_until_complete(staff(hub))
        rooms = loop.run_until_complete(nurse.request({"type": "rooms", "id": "r"}, "rooms"))["rooms"]
        assert len(rooms) == 1 and not rooms[0].get("offline"), rooms
    finally:
        patient.quit()
        if nurse:
            loop.run_until_complete(nurse.close())
        loop.close()
