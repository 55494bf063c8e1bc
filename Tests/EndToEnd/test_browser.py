"""The pages in a real browser: a patient in the widget and a nurse in the staff console talk
both ways through a running hub. Headless Chromium driven by Selenium (Debian's packages)."""

import asyncio
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import CHROMEDRIVER, CHROMIUM, REPO, TIMEOUT, Client, Hub, require_browser, staff, totp, visitor

webdriver = require_browser()
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as until  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SHOTS = REPO / ".build" / "screenshots"


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def wait(driver):
    # Pages re-render lists as frames arrive; an element found a moment ago may be gone.
    return WebDriverWait(driver, TIMEOUT, ignored_exceptions=(StaleElementReferenceException,))


def shot(driver, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def text_of(driver, selector):
    # One script call reads every match at once, so a re-render in between cannot stale it.
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText)", selector)


def test_patient_and_nurse_chat_in_the_browser(hub):
    patient, nurse = browser(), browser()
    try:
        base = f"http://127.0.0.1:{hub.port}"
        # The patient opens the clinic page and starts a chat through the pre-chat form.
        patient.get(base + "/widget-demo.html")
        wait(patient).until(until.element_to_be_clickable((By.CSS_SELECTOR, ".carehub-bubble"))).click()
        patient.find_element(By.NAME, "name").send_keys("Pat Example")
        patient.find_element(By.NAME, "reason").send_keys("Question about my prescription")
        patient.find_element(By.CSS_SELECTOR, ".carehub-start").click()
        wait(patient).until(until.visibility_of_element_located((By.CSS_SELECTOR, ".carehub-input")))
        patient.find_element(By.CSS_SELECTOR, ".carehub-input").send_keys("Hello, can I take it with food?")
        patient.find_element(By.CSS_SELECTOR, ".carehub-send").click()
        # Delivery state: the check mark appears once the hub has committed the message.
        wait(patient).until(lambda d: "✓" in text_of(d, ".carehub-mine .carehub-state"))
        # A HIPAA organisation never offers to e-mail the transcript.
        assert not patient.find_element(By.CSS_SELECTOR, ".carehub-transcript").is_displayed()
        shot(patient, "widget")

        # The nurse logs in; first login in the HIPAA clinic enrols the authenticator.
        nurse.get(base + "/staff.html?org=riverside-clinic")
        form = nurse.find_element(By.ID, "login-form")
        form.find_element(By.NAME, "user").send_keys("nurse.joy")
        form.find_element(By.NAME, "password").send_keys("riverside-nurse-test-pass")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        secret = wait(nurse).until(lambda d: d.find_element(By.ID, "enroll-secret").text).replace(" ", "")
        shot(nurse, "staff-enrolment")
        # The QR code drawn in the page scans (with zbar, a real decoder) to the provisioning URI.
        SHOTS.mkdir(parents=True, exist_ok=True)
        nurse.find_element(By.ID, "enroll-qr").screenshot(str(SHOTS / "enrolment-qr.png"))
        scanned = subprocess.run(["zbarimg", "--raw", "-q", str(SHOTS / "enrolment-qr.png")], capture_output=True, text=True)
        uri = nurse.find_element(By.ID, "enroll-uri").get_attribute("href")
        assert scanned.stdout.strip() == uri and f"secret={secret}" in uri
        enroll = nurse.find_element(By.ID, "enroll-form")
        enroll.find_element(By.NAME, "totp").send_keys(totp(secret, int(time.time()) // 30))
        enroll.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(nurse).until(lambda d: len(text_of(d, "#recovery-codes li")) == 10)
        nurse.find_element(By.ID, "recovery-done").click()

        room_button = wait(nurse).until(until.element_to_be_clickable((By.CSS_SELECTOR, "#rooms li button")))
        room_button.click()
        wait(nurse).until(lambda d: "Hello, can I take it with food?" in text_of(d, "#messages .text"))
        assert "Pat Example" in nurse.find_element(By.ID, "room-visitor").text
        nurse.find_element(By.ID, "reply").send_keys("Yes, with food is best.")
        nurse.find_element(By.CSS_SELECTOR, "#reply-form button").click()
        wait(patient).until(lambda d: "Yes, with food is best." in text_of(d, ".carehub-theirs .carehub-text"))
        shot(nurse, "staff-console")

        # Reloading the clinic page resumes the same chat with its history.
        patient.refresh()
        wait(patient).until(lambda d: "Yes, with food is best." in text_of(d, ".carehub-text"))
        assert "Hello, can I take it with food?" in text_of(patient, ".carehub-text")

        # The nurse ends the chat; the widget says so.
        nurse.find_element(By.ID, "end-chat").click()
        nurse.switch_to.alert.accept()
        wait(patient).until(lambda d: "ended" in d.find_element(By.CSS_SELECTOR, ".carehub-status").text)
        shot(patient, "widget-ended")
    finally:
        patient.quit()
        nurse.quit()


def log_in_and_enrol(driver, base, page, user, password):
    """Logs in on a console page, enrolling the authenticator from the page; returns the secret."""
    driver.get(base + page)
    form = wait(driver).until(lambda d: d.find_element(By.ID, "login-form"))
    form.find_element(By.NAME, "user").send_keys(user)
    form.find_element(By.NAME, "password").send_keys(password)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    secret = wait(driver).until(lambda d: d.find_element(By.ID, "enroll-secret").text).replace(" ", "")
    enroll = driver.find_element(By.ID, "enroll-form")
    enroll.find_element(By.NAME, "totp").send_keys(totp(secret, int(time.time()) // 30))
    enroll.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(lambda d: len(text_of(d, "#recovery-codes li")) == 10)
    driver.find_element(By.ID, "recovery-done").click()
    return secret


def set_pipeline_text(driver, text):
    driver.execute_script(
        "const area = document.getElementById('pipeline-text'); area.value = arguments[0];"
        "area.dispatchEvent(new Event('input'));", text)


def test_admin_lowers_the_idle_timeout_live_and_cannot_remove_encryption(hub):
    loop = asyncio.new_event_loop()
    nurse, session = loop.run_until_complete(staff(hub))
    assert session["idleTimeoutSeconds"] == 900
    driver = browser()
    try:
        base = f"http://127.0.0.1:{hub.port}"
        log_in_and_enrol(driver, base, "/admin.html?org=riverside-clinic", "dr.admin", "riverside-admin-test-pass")
        # The chain in force is drawn as a row of stages; the section is editable text.
        wait(driver).until(lambda d: text_of(d, "#chain .stage strong") == ["auth", "idle", "encrypt", "store", "purge", "fanout"])
        assert "HIPAA" in driver.find_element(By.ID, "hipaa-badge").text
        original = driver.find_element(By.ID, "pipeline-text").get_attribute("value")
        assert original.startswith("[org riverside-clinic]") and "timeout=15m" in original
        wait(driver).until(lambda d: "nurse.joy" in text_of(d, "#users tbody td"))
        wait(driver).until(lambda d: len(text_of(d, "#audit tbody tr")) > 0)

        # Removing encryption is refused, with the reason on the section's header line.
        set_pipeline_text(driver, original.replace("stage encrypt  cipher=aes-256-gcm\n", ""))
        driver.find_element(By.ID, "pipeline-save").click()
        wait(driver).until(lambda d: any("must run stage 'encrypt'" in t for t in text_of(d, "#pipeline-issues li")))
        assert text_of(driver, "#pipeline-issues li")[0].startswith("Line 1:")
        assert "Not saved" in driver.find_element(By.ID, "pipeline-status").text
        assert "! 1" in driver.find_element(By.ID, "gutter").text
        assert "stage encrypt" in hub.config.read_text()
        shot(driver, "admin-refused")

        # Lowering the idle timeout to 10 minutes is checked as it is typed, then applied live.
        set_pipeline_text(driver, original.replace("timeout=15m", "timeout=10m"))
        wait(driver).until(lambda d: "No problems found" in d.find_element(By.ID, "pipeline-status").text)
        driver.find_element(By.ID, "pipeline-save").click()
        wait(driver).until(lambda d: "Saved and in force" in d.find_element(By.ID, "pipeline-status").text)
        idle = driver.find_element(By.CSS_SELECTOR, "#chain .stage[data-stage=idle] .parameters").text
        assert "timeout=10m" in idle
        assert "timeout=10m" in hub.config.read_text()
        # The nurse stayed connected, and a login now gets the 10-minute timeout.
        rooms = loop.run_until_complete(nurse.request({"type": "rooms", "id": "r"}, "rooms"))
        assert rooms["type"] == "rooms"
        second, again = loop.run_until_complete(staff(hub))
        loop.run_until_complete(second.close())
        assert again["idleTimeoutSeconds"] == 600
        wait(driver).until(lambda d: "config.changed" in text_of(d, "#audit tbody td"))

        # Disabling the nurse's account ends her live session before the answer, and says so.
        button = "//tr[@data-user='nurse.joy']//button[text()='{}']"
        driver.find_element(By.XPATH, button.format("Disable")).click()
        wait(driver).until(lambda d: "its live sessions have ended" in d.find_element(By.ID, "users-status").text)
        assert loop.run_until_complete(nurse.recv("session_expired"))["reason"] == "revoked"
        wait(driver).until(lambda d: d.find_elements(By.XPATH, button.format("Enable")))
        driver.find_element(By.XPATH, button.format("Enable")).click()
        wait(driver).until(lambda d: "can log in again" in d.find_element(By.ID, "users-status").text)

        driver.find_element(By.ID, "audit-verify").click()
        wait(driver).until(lambda d: "The chain holds" in d.find_element(By.ID, "audit-verdict").text)
        driver.set_window_size(1200, 2400)  # the whole console in one picture
        driver.execute_script("window.scrollTo(0, 0)")
        shot(driver, "admin-console")
    finally:
        driver.quit()
        loop.run_until_complete(nurse.close())
        loop.close()


def test_an_admin_assigns_a_conversation_from_the_staff_console(workdir):
    config = workdir / "pipeline.conf"
    config.write_text(config.read_text().replace("hipaa = on\n", "hipaa = on\nstaff_access = assigned\n", 1))
    hub = Hub(workdir, config).start()
    loop = asyncio.new_event_loop()
    driver = browser()
    try:
        patient, welcome = loop.run_until_complete(visitor(hub))
        room = welcome["conversation"]
        nurse, _ = loop.run_until_complete(staff(hub))
        assert loop.run_until_complete(nurse.request({"type": "rooms", "id": "r"}, "rooms"))["rooms"] == []

        log_in_and_enrol(driver, f"http://127.0.0.1:{hub.port}", "/staff.html?org=riverside-clinic", "dr.admin", "riverside-admin-test-pass")
        wait(driver).until(until.element_to_be_clickable((By.CSS_SELECTOR, f"#rooms button[data-room='{room}']"))).click()
        form = wait(driver).until(until.visibility_of_element_located((By.ID, "assign-form")))
        # The admin's console offers the organisation's staff by name.
        wait(driver).until(lambda d: "nurse.joy" in [o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "#staff-names option")])
        form.find_element(By.NAME, "user").send_keys("nurse.joy")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(driver).until(lambda d: "Assigned to nurse.joy" in d.find_element(By.ID, "room-note").text)
        assert "nurse.joy" in driver.find_element(By.CSS_SELECTOR, f"#rooms button[data-room='{room}']").text

        # The nurse hears of it, and now sees the room.
        assert loop.run_until_complete(nurse.recv("assigned"))["room"] == room
        rooms = loop.run_until_complete(nurse.request({"type": "rooms", "id": "r2"}, "rooms"))["rooms"]
        assert [entry["room"] for entry in rooms] == [room] and rooms[0]["assignedTo"] == "nurse.joy"

        # Assigning to someone who is not on staff is refused, with the reason in the page.
        field = driver.find_element(By.CSS_SELECTOR, "#assign-form input[name=user]")
        field.clear()
        field.send_keys("ghost")
        driver.find_element(By.CSS_SELECTOR, "#assign-form button[type=submit]").click()
        wait(driver).until(lambda d: "ghost" in d.find_element(By.ID, "room-note").text)
        for client in (patient, nurse):
            loop.run_until_complete(client.close())
    finally:
        driver.quit()
        loop.close()
        hub.stop()


def notifying_browser():
    """A browser that has allowed the hub's pages to show desktop notifications."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"profile.default_content_setting_values.notifications": 1})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


# Records every Notification the page constructs, keeping the browser's permission state.
RECORD_NOTIFICATIONS = """
const Real = window.Notification;
window.shown = [];
window.Notification = function (title, options) { window.shown.push({ title, body: (options || {}).body || "" }); return { close() {} }; };
Object.defineProperty(window.Notification, "permission", { get: () => Real.permission });
window.Notification.requestPermission = () => Real.requestPermission();
"""

PATIENT_NAME = "CANARY-NAME Dora Bell"
PATIENT_REASON = "CANARY-REASON knee review"
PATIENT_WORDS = "CANARY-WORDS my knee gave way on the stairs"


def test_a_nurse_with_another_chat_open_sees_a_new_chat_arrive_and_wait(hub):
    loop = asyncio.new_event_loop()
    driver = notifying_browser()
    try:
        # Morning: a patient is already waiting when the nurse logs in.
        first, welcome = loop.run_until_complete(visitor(hub))
        morning = welcome["conversation"]
        loop.run_until_complete(first.request({"type": "send", "room": morning, "text": "Are you open today?", "id": "m0"}, "ack"))

        base = f"http://127.0.0.1:{hub.port}"
        log_in_and_enrol(driver, base, "/staff.html?org=riverside-clinic", "nurse.joy", "riverside-nurse-test-pass")
        wait(driver).until(lambda d: d.title == "(1) CareHub staff")
        assert driver.execute_script("return Notification.permission") == "granted"
        assert not driver.find_element(By.ID, "notify-allow").is_displayed()
        driver.execute_script(RECORD_NOTIFICATIONS)

        # She opens that chat; its message shows with its time.
        wait(driver).until(until.element_to_be_clickable((By.CSS_SELECTOR, f"#rooms button[data-room='{morning}']"))).click()
        wait(driver).until(lambda d: "Are you open today?" in text_of(d, "#messages .text"))
        stamp = driver.find_element(By.CSS_SELECTOR, "#messages .from time").text
        assert re.fullmatch(r"\d{1,2}:\d\d( [AP]M)?", stamp), stamp

        # A second patient starts a chat with the pre-chat form and writes twice.
        patient = loop.run_until_complete(Client.connect(hub))
        hello = {"type": "hello", "org": "riverside-clinic", "id": "h", "profile": {"name": PATIENT_NAME, "reason": PATIENT_REASON}}
        room = loop.run_until_complete(patient.request(hello, "welcome"))["conversation"]
        for index in range(2):
            loop.run_until_complete(patient.request({"type": "send", "room": room, "text": PATIENT_WORDS, "id": f"m{index}"}, "ack"))

        new = f"#rooms button[data-room='{room}']"
        wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, new) and d.find_element(By.CSS_SELECTOR, new + " .unread").text == "2")
        wait(driver).until(lambda d: PATIENT_NAME in d.find_element(By.CSS_SELECTOR, new).text)
        entry = driver.find_element(By.CSS_SELECTOR, new).text
        assert PATIENT_REASON in entry and "needs a reply" in entry and "started " in entry
        assert PATIENT_WORDS not in entry
        wait(driver).until(lambda d: d.title == "(2) CareHub staff")
        # Who has waited longest comes first.
        assert [b.get_attribute("data-room") for b in driver.find_elements(By.CSS_SELECTOR, "#rooms li button")] == [morning, room]
        shown = driver.execute_script("return window.shown")
        assert {"title": "New chat at Riverside Family Clinic", "body": "Open the staff console to read it."} in shown
        assert {"title": "New message at Riverside Family Clinic", "body": "Open the staff console to read it."} in shown
        assert "CANARY" not in repr(shown) and "CANARY" not in driver.title
        shot(driver, "staff-waiting")

        # She answers the morning patient: that chat no longer waits, the new one comes first.
        driver.find_element(By.ID, "reply").send_keys("Yes, until six.")
        driver.find_element(By.CSS_SELECTOR, "#reply-form button").click()
        wait(driver).until(lambda d: d.title == "(1) CareHub staff")
        wait(driver).until(lambda d: [b.get_attribute("data-room") for b in d.find_elements(By.CSS_SELECTOR, "#rooms li button")] == [room, morning])

        # The new patient leaves: the chat moves to the Ended section and nobody waits.
        loop.run_until_complete(patient.request({"type": "end", "room": room, "id": "e"}, "ended"))
        wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#rooms-ended button[data-room='{room}']"))
        assert driver.find_element(By.ID, "ended-heading").is_displayed()
        wait(driver).until(lambda d: d.title == "CareHub staff")
        shot(driver, "staff-ended-section")
        for client in (first, patient):
            loop.run_until_complete(client.close())
    finally:
        driver.quit()
        loop.close()


@pytest.mark.parametrize("page", ["/", "/staff.html", "/admin.html", "/widget-demo.html"])
def test_leaving_a_page_closes_its_websocket_at_the_hub(hub, page):
    """A page the browser keeps in its back/forward cache keeps its WebSocket open, silent: the
    hub would never learn that the user left (a nurse would stay online to her colleagues)."""
    driver = browser()
    try:
        driver.get(f"http://127.0.0.1:{hub.port}{page}")
        driver.execute_script("window.probe = new WebSocket(`ws://${location.host}/ws`)")
        wait(driver).until(lambda d: d.execute_script("return window.probe.readyState") == 1)
        driver.get("about:blank")
        counts = lambda: (hub.log_text().count("connection opened"), hub.log_text().count("connection closed"))
        deadline = time.monotonic() + TIMEOUT  # a hang guard, not a timing assertion
        while counts()[1] < counts()[0] and time.monotonic() < deadline:
            time.sleep(0.1)
        opened, closed = counts()
        assert opened >= 1 and closed == opened, f"{page}: {opened} opened, {closed} closed: {hub.log_text()}"
    finally:
        driver.quit()
