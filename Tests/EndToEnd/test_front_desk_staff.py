"""The front desk in the staff console, in real Chromium against a running hub: two nurses on a
shift say whether they are available and see each other's state, take a waiting chat ("I'll
take it"), hand it over with a note and send it back to the queue, answer with a canned reply
picked with "/", and the patient hears when the nurse has read the message. A room a nurse may no
longer read leaves her console; a message left while the clinic was closed is marked; the
console remembers its choices on the browser but never a word of a conversation."""

import asyncio
import time

import pytest

from conftest import TIMEOUT, Client, Hub, add_account, carehub, staff, totp, visitor
from test_browser import browser, log_in_and_enrol, notifying_browser, shot, text_of, wait

webdriver = pytest.importorskip("selenium.webdriver", reason="python3-selenium is installed by scripts/setup.sh")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as until  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

RIVERSIDE = "riverside-clinic"
JOY_PASSWORD = "riverside-nurse-test-pass"
KIM_PASSWORD = "riverside-kim-test-pass"
ADMIN_PASSWORD = "riverside-admin-test-pass"
STAFF_PAGE = "/staff.html?org=riverside-clinic"

PATIENT_WORDS = "CANARY-WORDS my knee is swollen since the fall"
NOTE = "CANARY-NOTE knee swollen since Tuesday.\nX-ray booked for 3pm."
HOURS_TEXT = "We are open Monday to Friday, 8:00 to 18:00."

# Records every frame the page sends (the socket is already open; its send is the prototype's).
RECORD_SENT = """
window.sent = [];
const real = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) { window.sent.push(JSON.parse(data)); return real.call(this, data); };
"""


def front_desk_workdir(workdir, assigned=False):
    """The test accounts, nurse.joy named "Joy Rivera", and a second nurse, nurse.kim ("Kim Lee")."""
    config = workdir / "pipeline.conf"
    if assigned:
        config.write_text(config.read_text().replace("hipaa = on\n", "hipaa = on\nstaff_access = assigned\n", 1))
    carehub("user", "set-display-name", "--org", RIVERSIDE, "--user", "nurse.joy", "--display-name", "Joy Rivera",
            "--data", str(workdir / "data"))
    add_account(workdir, RIVERSIDE, "nurse.kim", "staff", KIM_PASSWORD, display_name="Kim Lee")
    return config


@pytest.fixture
def front_desk(workdir):
    hub = Hub(workdir, front_desk_workdir(workdir)).start()
    yield hub
    hub.stop()


@pytest.fixture
def assigned_desk(workdir):
    hub = Hub(workdir, front_desk_workdir(workdir, assigned=True)).start()
    yield hub
    hub.stop()


def enrol(driver, base, user, password):
    """Logs in on the staff console, enrolling the authenticator; returns (secret, step used)."""
    secret = log_in_and_enrol(driver, base, STAFF_PAGE, user, password)
    wait(driver).until(until.visibility_of_element_located((By.ID, "console-view")))
    return secret, int(time.time()) // 30


def log_in_again(driver, base, user, password, secret, used_step):
    """Logs in with a code for a step after the one last used (the hub refuses a replayed code)."""
    while int(time.time()) // 30 <= used_step:
        time.sleep(1)
    driver.get(base + STAFF_PAGE)
    form = wait(driver).until(lambda d: d.find_element(By.ID, "login-form"))
    form.find_element(By.NAME, "user").send_keys(user)
    form.find_element(By.NAME, "password").send_keys(password)
    form.find_element(By.NAME, "totp").send_keys(totp(secret, int(time.time()) // 30))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(until.visibility_of_element_located((By.ID, "console-view")))


def team_state(driver, user):
    """The team panel's line for `user`: [name, state], or None while it is not listed."""
    found = driver.execute_script(
        "const li = document.querySelector(`#team li[data-user='${arguments[0]}']`);"
        "return li ? [li.querySelector('.name').innerText, li.querySelector('.state').innerText] : null", user)
    return found


def room_entry(driver, room):
    """What the room list shows of a room: its text, its 'Taken by' line, and whether 'I'll take it' shows."""
    return driver.execute_script(
        "const b = document.querySelector(`#rooms button[data-room='${arguments[0]}']`);"
        "if (!b) return null;"
        "const claim = b.parentElement.querySelector('input.claim');"
        "const taken = b.querySelector('.taken');"
        "return { text: b.innerText, taken: taken ? taken.innerText : null, claim: Boolean(claim && claim.offsetParent) }", room)


def choose_presence(driver, state):
    Select(driver.find_element(By.ID, "presence")).select_by_value(state)


def open_room(driver, room):
    wait(driver).until(until.element_to_be_clickable((By.CSS_SELECTOR, f"#rooms button[data-room='{room}']"))).click()
    wait(driver).until(lambda d: d.find_element(By.ID, "room-pane").is_displayed())


def transfer(driver, to, note):
    """Transfer… in the open room: choose `to` (a login, or "" for the queue), write the note, send."""
    driver.find_element(By.ID, "transfer-open").click()
    wait(driver).until(lambda d: d.find_element(By.ID, "transfer-dialog").is_displayed())
    Select(driver.find_element(By.ID, "transfer-to")).select_by_value(to)
    driver.execute_script(
        "const n = document.getElementById('transfer-note'); n.value = arguments[0]; n.dispatchEvent(new Event('input'))", note)
    driver.find_element(By.ID, "transfer-send").click()


def no_canary_stored(driver):
    stored = driver.execute_script("return Object.entries(localStorage)")
    assert "CANARY" not in repr(stored), stored
    assert "CANARY" not in driver.title
    return dict(stored)


def test_two_nurses_claim_hand_over_and_send_back_a_chat(front_desk):
    hub = front_desk
    base = f"http://127.0.0.1:{hub.port}"
    loop = asyncio.new_event_loop()
    joy, kim = browser(), browser()
    try:
        # The clinic's canned replies, written by the admin.
        admin, _ = loop.run_until_complete(staff(hub, user="dr.admin"))
        for name, text in (("Opening hours", HOURS_TEXT), ("Call back", "A nurse will call you back today.")):
            reply = loop.run_until_complete(admin.request(
                {"type": "admin", "op": "replies.set", "id": "r-" + name, "name": name, "text": text}, "admin"))
            assert reply["type"] == "admin", reply
        loop.run_until_complete(admin.request({"type": "logout", "id": "out"}, "logged_out"))
        loop.run_until_complete(admin.close())

        # A patient writes in; the chat waits in the queue.
        patient, welcome = loop.run_until_complete(visitor(hub))
        room = welcome["conversation"]
        asked = loop.run_until_complete(patient.request({"type": "send", "room": room, "text": PATIENT_WORDS, "id": "m1"}, "ack"))

        # Both nurses start their shift; each sees the other on the team panel, available.
        joy_secret, joy_step = enrol(joy, base, "nurse.joy", JOY_PASSWORD)
        kim_secret, kim_step = enrol(kim, base, "nurse.kim", KIM_PASSWORD)
        joy.execute_script(RECORD_SENT)
        wait(joy).until(lambda d: team_state(d, "nurse.kim") == ["Kim Lee", "available"])
        wait(kim).until(lambda d: team_state(d, "nurse.joy") == ["Joy Rivera", "available"])
        assert team_state(joy, "nurse.joy") == ["Joy Rivera (you)", "available"]

        # Kim steps away for a moment, and Joy's team panel says so.
        choose_presence(kim, "away")
        wait(joy).until(lambda d: team_state(d, "nurse.kim") == ["Kim Lee", "away"])
        choose_presence(kim, "available")
        wait(joy).until(lambda d: team_state(d, "nurse.kim") == ["Kim Lee", "available"])

        # Joy takes the chat from the list; it opens for her, and Kim's list says who has it.
        wait(joy).until(lambda d: (room_entry(d, room) or {}).get("claim"))
        joy.find_element(By.CSS_SELECTOR, f"#rooms input.claim[data-claim='{room}']").click()
        wait(joy).until(lambda d: (room_entry(d, room) or {}).get("taken") == "Taken by you")
        wait(joy).until(lambda d: PATIENT_WORDS in text_of(d, "#messages .text"))
        assert "Taken by you" in joy.find_element(By.ID, "room-taken").text
        wait(kim).until(lambda d: (room_entry(d, room) or {}).get("taken") == "Taken by Joy Rivera")
        assert not room_entry(kim, room)["claim"]

        # The patient hears that the message was read: the seq Joy's console had on screen.
        read = loop.run_until_complete(patient.recv("read"))
        assert read == {"type": "read", "room": room, "seq": asked["seq"]}, read

        # Kim, too late, is told in plain words.
        open_room(kim, room)
        wait(kim).until(lambda d: PATIENT_WORDS in text_of(d, "#messages .text"))
        kim.find_element(By.ID, "claim-room").click()
        wait(kim).until(lambda d: d.find_element(By.ID, "room-note").text == "Already taken by Joy Rivera.")
        shot(kim, "front-desk-already-taken")

        # Joy answers with a canned reply: "/" opens the list, filtered as she types.
        box = joy.find_element(By.ID, "reply")
        box.send_keys("/hou")
        wait(joy).until(lambda d: d.find_element(By.ID, "replies-pop").is_displayed())
        options = text_of(joy, "#replies-list [role=option] .name")
        assert options == ["Opening hours"], options
        assert box.get_attribute("aria-expanded") == "true"
        assert box.get_attribute("aria-activedescendant") == "reply-option-0"
        assert joy.find_element(By.ID, "reply-option-0").get_attribute("aria-selected") == "true"
        shot(joy, "front-desk-canned-replies")
        box.send_keys(Keys.ENTER)
        wait(joy).until(lambda d: d.find_element(By.ID, "reply").get_attribute("value") == HOURS_TEXT)
        assert not joy.find_element(By.ID, "replies-pop").is_displayed()
        # Escape closes the list and leaves the box as typed.
        box.send_keys(" /")
        joy.find_element(By.ID, "replies-open").click()
        wait(joy).until(lambda d: text_of(d, "#replies-list [role=option] .name") == ["Call back", "Opening hours"])
        box.send_keys(Keys.ESCAPE)
        wait(joy).until(lambda d: not d.find_element(By.ID, "replies-pop").is_displayed())
        assert box.get_attribute("value") == HOURS_TEXT + " /"
        box.send_keys(Keys.END, Keys.BACKSPACE, "Ask for Joy.", Keys.ENTER)
        sent = loop.run_until_complete(patient.recv("message"))
        assert sent["text"] == HOURS_TEXT + " Ask for Joy." and sent["fromName"] == "Joy Rivera", sent
        # Kim, in the room, sees it under Joy's display name.
        wait(kim).until(lambda d: HOURS_TEXT + " Ask for Joy." in text_of(d, "#messages .text"))
        assert any(who.startswith("Joy Rivera") for who in text_of(kim, "#messages li.theirs .from"))
        # While Joy's page is hidden a new message is not reported as read; once she looks, it is.
        joy.execute_script("Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });"
                           "document.dispatchEvent(new Event('visibilitychange'))")
        later = loop.run_until_complete(patient.request({"type": "send", "room": room, "text": "CANARY-WORDS thank you", "id": "m2"}, "ack"))
        wait(joy).until(lambda d: "CANARY-WORDS thank you" in text_of(d, "#messages .text"))
        assert [f for f in joy.execute_script("return window.sent") if f["type"] == "read" and f["seq"] >= later["seq"]] == []
        joy.execute_script("Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });"
                           "document.dispatchEvent(new Event('visibilitychange'))")
        while True:
            read = loop.run_until_complete(patient.recv("read"))
            if read["seq"] >= later["seq"]:
                break
        assert read == {"type": "read", "room": room, "seq": later["seq"]}, read
        # Opening the room again shows the same messages: no second receipt for them.
        open_room(joy, room)
        wait(joy).until(lambda d: len(text_of(d, "#messages .text")) == 3)
        assert "CANARY-WORDS thank you" in text_of(joy, "#messages .text")
        reads = [f["seq"] for f in joy.execute_script("return window.sent") if f["type"] == "read"]
        assert reads == sorted(set(reads)) and reads[-1] == later["seq"], reads

        # Joy hands the chat to Kim with a note; a note over 2,000 bytes is refused in the form.
        joy.find_element(By.ID, "transfer-open").click()
        wait(joy).until(lambda d: d.find_element(By.ID, "transfer-dialog").is_displayed())
        choices = text_of(joy, "#transfer-to option")
        assert choices == ["Kim Lee (available)", "dr.admin (offline)", "Back to the queue"], choices
        joy.find_element(By.ID, "transfer-cancel").click()
        transfer(joy, "nurse.kim", "é" * 1001)
        wait(joy).until(lambda d: "too long" in d.find_element(By.ID, "transfer-error").text)
        assert joy.find_element(By.ID, "transfer-dialog").is_displayed()
        joy.find_element(By.ID, "transfer-cancel").click()
        transfer(joy, "nurse.kim", NOTE)
        wait(joy).until(lambda d: d.find_element(By.ID, "room-note").text == "Transferred to Kim Lee.")
        assert not joy.find_element(By.ID, "transfer-dialog").is_displayed()
        wait(joy).until(lambda d: (room_entry(d, room) or {}).get("taken") == "Taken by Kim Lee")

        # Kim has it, with Joy's note in plain sight.
        wait(kim).until(lambda d: d.find_element(By.ID, "handoff").is_displayed())
        handoff = kim.find_element(By.ID, "handoff").text
        assert handoff.startswith("Transferred by Joy Rivera at ") and NOTE in handoff, handoff
        wait(kim).until(lambda d: (room_entry(d, room) or {}).get("taken") == "Taken by you")
        assert kim.find_element(By.ID, "room-note").text == ""  # "Already taken" no longer holds
        shot(kim, "front-desk-handoff")

        # Kim goes away, closes the page; back later, her console says she is away again, and the
        # room shows the hand-over note and the history under the display names.
        choose_presence(kim, "away")
        wait(joy).until(lambda d: team_state(d, "nurse.kim") == ["Kim Lee", "away"])
        kim.get("about:blank")
        wait(joy).until(lambda d: team_state(d, "nurse.kim") == ["Kim Lee", "offline"])
        log_in_again(kim, base, "nurse.kim", KIM_PASSWORD, kim_secret, kim_step)
        wait(joy).until(lambda d: team_state(d, "nurse.kim") == ["Kim Lee", "away"])
        assert Select(kim.find_element(By.ID, "presence")).first_selected_option.text == "Away"
        open_room(kim, room)
        wait(kim).until(lambda d: d.find_element(By.ID, "handoff").is_displayed())
        handoff = kim.find_element(By.ID, "handoff").text
        assert handoff.startswith("Transferred by Joy Rivera at ") and NOTE.splitlines()[0] in handoff, handoff
        wait(kim).until(lambda d: len(text_of(d, "#messages .text")) == 3)
        assert any(who.startswith("Joy Rivera") for who in text_of(kim, "#messages .from"))

        # Kim sends it back to the queue: Joy's list offers "I'll take it" again.
        transfer(kim, "", "Back to the queue, I am off to the ward.")
        wait(kim).until(lambda d: d.find_element(By.ID, "room-note").text == "Put back in the queue.")
        wait(joy).until(lambda d: (room_entry(d, room) or {}).get("claim") and room_entry(d, room)["taken"] is None)
        shot(joy, "front-desk-back-in-queue")

        # Nothing of the conversation stays on either browser.
        for driver in (joy, kim):
            no_canary_stored(driver)
        loop.run_until_complete(patient.close())
    finally:
        joy.quit()
        kim.quit()
        loop.close()


def test_a_chat_handed_to_a_colleague_leaves_the_nurses_console(assigned_desk):
    hub = assigned_desk
    base = f"http://127.0.0.1:{hub.port}"
    loop = asyncio.new_event_loop()
    joy = browser()
    try:
        first, welcome = loop.run_until_complete(visitor(hub))
        room = welcome["conversation"]
        loop.run_until_complete(first.request({"type": "send", "room": room, "text": PATIENT_WORDS, "id": "m1"}, "ack"))
        second, welcome = loop.run_until_complete(visitor(hub))
        other = welcome["conversation"]
        admin, _ = loop.run_until_complete(staff(hub, user="dr.admin"))
        kim, _ = loop.run_until_complete(staff(hub, user="nurse.kim"))
        for target in (room, other):
            answer = loop.run_until_complete(admin.request({"type": "assign", "room": target, "user": "nurse.joy", "id": "a" + target}, "assigned"))
            assert answer["type"] == "assigned", answer

        enrol(joy, base, "nurse.joy", JOY_PASSWORD)
        open_room(joy, room)
        wait(joy).until(lambda d: PATIENT_WORDS in text_of(d, "#messages .text"))
        assert room_entry(joy, other) is not None

        # Joy hands the open chat to Kim: it leaves her list and her screen, with a sentence.
        transfer(joy, "nurse.kim", NOTE)
        handed = loop.run_until_complete(kim.recv("transferred"))
        assert handed["room"] == room and handed["from"] == "nurse.joy" and handed["fromName"] == "Joy Rivera", handed
        assert handed["note"] == NOTE and handed["to"] == "nurse.kim"
        wait(joy).until(lambda d: room_entry(d, room) is None)
        wait(joy).until(lambda d: d.find_element(By.ID, "room-empty").is_displayed())
        assert not joy.find_element(By.ID, "room-pane").is_displayed()
        assert "no longer yours to read" in joy.find_element(By.ID, "room-empty").text
        assert PATIENT_WORDS not in joy.find_element(By.TAG_NAME, "body").text
        shot(joy, "front-desk-room-left")

        # The admin gives her other chat to Kim too: it leaves the list though it was not open.
        loop.run_until_complete(admin.request({"type": "assign", "room": other, "user": "nurse.kim", "id": "again"}, "assigned"))
        wait(joy).until(lambda d: room_entry(d, other) is None)
        for client in (first, second, admin, kim):
            loop.run_until_complete(client.close())
    finally:
        joy.quit()
        loop.close()


def test_a_message_left_while_closed_is_marked_and_choices_are_remembered(workdir):
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    base = f"http://127.0.0.1:{hub.port}"
    loop = asyncio.new_event_loop()
    driver = notifying_browser()
    try:
        # Overnight a patient left a message through the widget's "leave a message" form.
        patient = loop.run_until_complete(Client.connect(hub))
        hello = {"type": "hello", "org": "lotus-wellness", "id": "h", "offline": True,
                 "profile": {"name": "CANARY-NAME Ann Night", "reason": "CANARY-REASON a booking"}}
        night = loop.run_until_complete(patient.request(hello, "welcome"))
        assert night["type"] == "welcome", night
        room = night["conversation"]
        loop.run_until_complete(patient.request({"type": "send", "room": room, "text": PATIENT_WORDS, "id": "m1"}, "ack"))
        daytime, welcome = loop.run_until_complete(visitor(hub, org="lotus-wellness"))
        day = welcome["conversation"]

        def log_in():
            driver.get(base + "/staff.html?org=lotus-wellness")
            form = wait(driver).until(lambda d: d.find_element(By.ID, "login-form"))
            form.find_element(By.NAME, "user").send_keys("coach.sam")
            form.find_element(By.NAME, "password").send_keys("lotus-coach-test-pass")
            form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            wait(driver).until(until.visibility_of_element_located((By.ID, "console-view")))

        log_in()
        wait(driver).until(lambda d: "Left a message while closed" in ((room_entry(d, room) or {}).get("text") or ""))
        wait(driver).until(lambda d: room_entry(d, day) is not None)
        assert "Left a message while closed" not in room_entry(driver, day)["text"]
        shot(driver, "front-desk-left-while-closed")

        # Sound on, desktop notifications off: the browser keeps both choices.
        assert not driver.find_element(By.ID, "sound").is_selected()
        assert driver.find_element(By.ID, "notify-on").is_selected()
        driver.find_element(By.ID, "sound").click()
        driver.find_element(By.ID, "notify-on").click()
        driver.find_element(By.ID, "logout").click()
        wait(driver).until(lambda d: d.find_element(By.ID, "login-view").is_displayed())
        log_in()
        assert driver.find_element(By.ID, "sound").is_selected()
        assert not driver.find_element(By.ID, "notify-on").is_selected()
        stored = no_canary_stored(driver)
        assert room not in repr(stored) and day not in repr(stored)
        for client in (patient, daytime):
            loop.run_until_complete(client.close())
    finally:
        driver.quit()
        loop.close()
        hub.stop()
