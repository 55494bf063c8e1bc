"""Canned replies: an admin manages them in the admin console (a real browser), staff list them
over the WebSocket, visitors may not, and the audit log names them without their text."""

import asyncio
import json
import time

from conftest import AUTHENTICATOR, TIMEOUT, staff, visitor
from test_admin import admin
from test_browser import browser, log_in_and_enrol, shot, text_of, wait
from selenium.webdriver.common.by import By

RIVERSIDE = "riverside-clinic"
HOURS = "Opening hours"
HOURS_FIRST = "CANARY-FIRST We are open 8–18 on weekdays.\nClosed on Sundays."
HOURS_EDITED = "CANARY-EDITED We are open 8–20 on weekdays."
PARKING = "Parking"
PARKING_TEXT = "CANARY-PARKING Park behind the building."


def reply_names(driver):
    return text_of(driver, "#replies tbody td.name")


def row_button(driver, name, label):
    row = driver.find_element(By.CSS_SELECTOR, f"#replies tbody tr[data-name='{name}']")
    return next(button for button in row.find_elements(By.TAG_NAME, "button") if button.text == label)


def add_reply(driver, name, text):
    form = driver.find_element(By.ID, "canned-form")
    form.find_element(By.NAME, "name").send_keys(name)
    form.find_element(By.NAME, "text").send_keys(text)
    driver.find_element(By.ID, "canned-save").click()


def test_admin_manages_canned_replies_staff_list_them_and_the_audit_keeps_no_text(hub):
    loop = asyncio.new_event_loop()
    driver = browser()
    try:
        base = f"http://127.0.0.1:{hub.port}"
        secret = log_in_and_enrol(driver, base, f"/admin.html?org={RIVERSIDE}", "dr.admin", "riverside-admin-test-pass")
        key = (hub.data, RIVERSIDE, "dr.admin")
        AUTHENTICATOR.secrets[key] = secret
        AUTHENTICATOR.last_step[key] = int(time.time()) // 30
        wait(driver).until(lambda d: d.find_element(By.ID, "replies-empty").is_displayed())

        # Two replies added; they are listed by name.
        add_reply(driver, HOURS, HOURS_FIRST)
        wait(driver).until(lambda d: reply_names(d) == [HOURS])
        assert "Reply added." in driver.find_element(By.ID, "replies-status").text
        add_reply(driver, PARKING, PARKING_TEXT)
        wait(driver).until(lambda d: reply_names(d) == [HOURS, PARKING])
        assert text_of(driver, "#replies tbody td.text") == [HOURS_FIRST, PARKING_TEXT]
        assert not driver.find_element(By.ID, "replies-empty").is_displayed()

        # One is edited: its name stays, its text is replaced.
        row_button(driver, HOURS, "Edit").click()
        form = driver.find_element(By.ID, "canned-form")
        assert form.find_element(By.NAME, "name").get_attribute("readonly") is not None
        assert form.find_element(By.NAME, "text").get_attribute("value") == HOURS_FIRST
        form.find_element(By.NAME, "text").clear()
        form.find_element(By.NAME, "text").send_keys(HOURS_EDITED)
        assert driver.find_element(By.ID, "canned-save").text == "Save changes"
        driver.find_element(By.ID, "canned-save").click()
        wait(driver).until(lambda d: text_of(d, "#replies tbody td.text") == [HOURS_EDITED, PARKING_TEXT])
        assert f"Saved the changes to “{HOURS}”." in driver.find_element(By.ID, "replies-status").text
        assert driver.find_element(By.ID, "canned-save").text == "Add reply"

        # The other is deleted, after a confirmation.
        row_button(driver, PARKING, "Delete").click()
        alert = driver.switch_to.alert
        assert PARKING in alert.text
        alert.accept()
        wait(driver).until(lambda d: reply_names(d) == [HOURS])
        assert "Reply deleted." in driver.find_element(By.ID, "replies-status").text

        # A name of only spaces is refused in plain words, and nothing is added.
        add_reply(driver, "   ", "Text")
        wait(driver).until(lambda d: "Give the reply a name of 1 to 40 characters" in d.find_element(By.ID, "replies-status").text)
        assert reply_names(driver) == [HOURS]
        wait(driver).until(lambda d: "reply.deleted" in text_of(d, "#audit tbody td"))
        driver.execute_script("document.getElementById('replies-section').scrollIntoView()")
        shot(driver, "admin-canned-replies")

        async def over_the_wire():
            # Staff list exactly the reply that is left.
            nurse, _ = await staff(hub)
            listed = await nurse.request({"type": "replies", "id": "r1"}, "replies")
            assert listed == {"type": "replies", "id": "r1", "replies": [{"name": HOURS, "text": HOURS_EDITED}]}, listed

            # A visitor may not.
            patient, _ = await visitor(hub)
            refused = await patient.request({"type": "replies", "id": "r2"}, "replies")
            assert refused["type"] == "error" and refused["code"] == "forbidden" and refused["id"] == "r2", refused

            # The audit names each change and its size, never the text.
            boss, _ = await staff(hub, RIVERSIDE, "dr.admin")
            events = (await admin(boss, "audit.list", limit=50))["result"]["events"]
            changes = [(e["action"], e["actor"], e["detail"]) for e in reversed(events) if e["action"].startswith("reply.")]
            assert changes == [
                ("reply.saved", "dr.admin", f'name="{HOURS}" bytes={len(HOURS_FIRST.encode())}'),
                ("reply.saved", "dr.admin", f'name="{PARKING}" bytes={len(PARKING_TEXT.encode())}'),
                ("reply.saved", "dr.admin", f'name="{HOURS}" bytes={len(HOURS_EDITED.encode())}'),
                ("reply.deleted", "dr.admin", f'name="{PARKING}"'),
            ], changes
            assert "CANARY" not in json.dumps(events)

            # Deleting what is not there is not_found.
            missing = await admin(boss, "replies.delete", name=PARKING)
            assert missing["type"] == "error" and missing["code"] == "not_found", missing

            # At most 200 per organisation: a new name beyond is a conflict, a change is not.
            for index in range(199):
                saved = await admin(boss, "replies.set", name=f"reply {index:03d}", text="text")
                assert saved["type"] == "admin", saved
            assert len(saved["result"]["replies"]) == 200
            full = await admin(boss, "replies.set", name="one too many", text="text")
            assert full["type"] == "error" and full["code"] == "conflict", full
            changed = await admin(boss, "replies.set", name=HOURS, text="Still editable at the cap.")
            assert changed["type"] == "admin" and len(changed["result"]["replies"]) == 200, changed
            for client in (nurse, patient, boss):
                await client.close()

        loop.run_until_complete(asyncio.wait_for(over_the_wire(), TIMEOUT * 4))
    finally:
        driver.quit()
        loop.close()
