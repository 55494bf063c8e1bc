"""A nurse's shift in the staff console, in real Chromium against a running hub: the end-of-chat
confirmation says what becomes of the transcript, the reply box goes away with the chat, the idle
lock warns with a countdown that a key press dismisses, and the organisation comes from the page's
address, with a wrong one answered in plain words."""

import asyncio
import re

import pytest

from conftest import TIMEOUT, Hub, require_browser, visitor

require_browser()
from selenium.common.exceptions import ElementNotInteractableException  # noqa: E402
from test_browser import browser, log_in_and_enrol, shot, text_of, wait  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as until  # noqa: E402

LOTUS_PASSWORD = "lotus-coach-test-pass"


def with_lotus(workdir, *stage_lines):
    """The shipped pipeline.conf with extra stage lines for lotus-wellness, after its store stage."""
    config = workdir / "pipeline.conf"
    text = config.read_text()
    store = "stage store    history=500\n"
    assert store in text
    config.write_text(text.replace(store, store + "".join(line + "\n" for line in stage_lines), 1))
    return config


def log_in(driver, base, page, user, password):
    """Logs in on a console page whose organisation field is already filled in."""
    driver.get(base + page)
    form = wait(driver).until(lambda d: d.find_element(By.ID, "login-form"))
    form.find_element(By.NAME, "user").send_keys(user)
    form.find_element(By.NAME, "password").send_keys(password)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def end_chat_from_the_console(driver, room, name):
    """Opens the room, asks to end it, and returns the confirmation's text (after accepting it)."""
    wait(driver).until(until.element_to_be_clickable((By.CSS_SELECTOR, f"#rooms button[data-room='{room}']"))).click()
    wait(driver).until(lambda d: "Hello from the waiting room" in text_of(d, "#messages .text"))
    driver.find_element(By.ID, "end-chat").click()
    alert = wait(driver).until(until.alert_is_present())
    question = alert.text
    alert.accept()
    # The reply box goes with the chat: not shown, and nothing can be typed into it.
    wait(driver).until(lambda d: "This chat has ended." in d.find_element(By.ID, "typing").text)
    wait(driver).until(lambda d: not d.find_element(By.ID, "reply-form").is_displayed())
    assert not driver.find_element(By.ID, "reply").is_displayed()
    with pytest.raises(ElementNotInteractableException):
        driver.find_element(By.ID, "reply").send_keys("are you still there?")
    assert driver.find_element(By.ID, "reply").get_attribute("value") == ""
    shot(driver, f"staff-day-{name}-ended")
    return question


def open_chat(hub, loop, org):
    patient, welcome = loop.run_until_complete(visitor(hub, org=org))
    loop.run_until_complete(patient.request({"type": "send", "room": welcome["conversation"], "text": "Hello from the waiting room", "id": "m1"}, "ack"))
    return patient, welcome["conversation"]


def test_ending_a_hipaa_chat_says_it_is_exported_encrypted_then_the_reply_box_goes(hub, workdir):
    loop = asyncio.new_event_loop()
    driver = browser()
    try:
        patient, room = open_chat(hub, loop, "riverside-clinic")
        base = f"http://127.0.0.1:{hub.port}"
        log_in_and_enrol(driver, base, "/staff.html?org=riverside-clinic", "nurse.joy", "riverside-nurse-test-pass")
        question = end_chat_from_the_console(driver, room, "hipaa")
        assert question.startswith("End this chat for the visitor too?")
        assert ("The transcript will be exported to the clinic's records (encrypted files on the hub's host) "
                "and then erased from CareHub.") in question
        assert str(workdir) not in question and ".pem" not in question
        # And so it was: one encrypted file in the (test's) export directory.
        exports = workdir / "records"
        wait(driver).until(lambda d: [p.name for p in exports.iterdir()] == [f"{room}.json.cms"])
        assert loop.run_until_complete(patient.recv("ended"))["room"] == room
        loop.run_until_complete(patient.close())
    finally:
        driver.quit()
        loop.close()


def test_ending_a_chat_in_an_org_that_only_purges_says_it_is_erased(workdir):
    hub = Hub(workdir, with_lotus(workdir, "stage purge on=end")).start()
    loop = asyncio.new_event_loop()
    driver = browser()
    try:
        patient, room = open_chat(hub, loop, "lotus-wellness")
        log_in(driver, f"http://127.0.0.1:{hub.port}", "/staff.html#org=lotus-wellness", "coach.sam", LOTUS_PASSWORD)
        question = end_chat_from_the_console(driver, room, "purge-only")
        assert question == "End this chat for the visitor too?\n\nThis chat will be erased and not kept anywhere."
        loop.run_until_complete(patient.close())
    finally:
        driver.quit()
        loop.close()
        hub.stop()


def countdown_seconds(driver):
    match = re.fullmatch(r"(\d+) seconds?", driver.find_element(By.ID, "idle-countdown").text)
    return int(match.group(1)) if match else None


def warning_or_lock(driver):
    """Which came first on screen: the idle warning or the login (lock) view."""
    def shown(d):
        if d.find_element(By.ID, "idle-warning").is_displayed():
            return "warning"
        if d.find_element(By.ID, "login-view").is_displayed():
            return "locked"
        return False
    return wait(driver).until(shown)


def test_the_idle_lock_warns_with_a_countdown_that_a_key_press_dismisses(workdir):
    # A 30-second timeout: the warning comes at half of it, 15 seconds before the lock.
    config = workdir / "pipeline.conf"
    shipped = "stage idle     timeout=60m lifetime=12h\n"
    assert shipped in config.read_text()
    config.write_text(config.read_text().replace(shipped, "stage idle     timeout=30s lifetime=12h\n"))
    hub = Hub(workdir, config).start()
    driver = browser()
    try:
        base = f"http://127.0.0.1:{hub.port}"
        log_in(driver, base, "/staff.html?org=lotus-wellness", "coach.sam", LOTUS_PASSWORD)
        wait(driver).until(until.visibility_of_element_located((By.ID, "console-view")))
        # Background traffic (the room list) does not hold the warning off.
        assert warning_or_lock(driver) == "warning"
        first = wait(driver).until(countdown_seconds)
        assert 0 < first <= 15
        wait(driver).until(lambda d: (countdown_seconds(d) or first) <= first - 5)  # it counts down
        shot(driver, "staff-day-idle-warning")
        # A key press counts as activity: the warning goes, and the hub heard of it (without
        # the `activity` frame the hub would lock the session before the next warning).
        ActionChains(driver).send_keys(Keys.SHIFT).perform()
        wait(driver).until(lambda d: not d.find_element(By.ID, "idle-warning").is_displayed())
        assert driver.find_element(By.ID, "console-view").is_displayed()
        assert warning_or_lock(driver) == "warning"
        # Left alone, the console locks, and the lock screen keeps the user name filled in.
        wait(driver).until(lambda d: d.find_element(By.ID, "login-view").is_displayed())
        assert "inactivity" in driver.find_element(By.ID, "lock-note").text
        form = driver.find_element(By.ID, "login-form")
        assert form.find_element(By.NAME, "user").get_attribute("value") == "coach.sam"
        assert form.find_element(By.NAME, "org").get_attribute("value") == "lotus-wellness"
        assert not driver.find_element(By.ID, "idle-warning").is_displayed()
        shot(driver, "staff-day-locked")
        # The browser remembers the organisation last used.
        driver.get(base + "/staff.html")
        field = wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, "#login-form input[name=org]"))
        assert field.get_attribute("value") == "lotus-wellness"
    finally:
        driver.quit()
        hub.stop()


def test_the_organisation_comes_from_the_address_and_a_wrong_one_is_named(hub):
    driver = browser()
    try:
        base = f"http://127.0.0.1:{hub.port}"
        driver.get(base + "/admin.html?org=lotus-wellness")
        field = wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, "#login-form input[name=org]"))
        assert field.get_attribute("value") == "lotus-wellness"
        # Nothing is assumed: a fresh browser on the bare page gets an empty organisation field.
        driver.get(base + "/staff.html")
        field = wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, "#login-form input[name=org]"))
        assert field.get_attribute("value") == ""

        log_in(driver, base, "/staff.html#org=riverside-clinc", "nurse.joy", "riverside-nurse-test-pass")
        error = wait(driver).until(lambda d: d.find_element(By.ID, "login-error").text)
        assert error.startswith("There is no organisation 'riverside-clinc' on this hub")
        shot(driver, "staff-day-unknown-org")
    finally:
        driver.quit()
