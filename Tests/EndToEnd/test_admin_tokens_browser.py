"""Integration tokens in the admin console, in a real browser (headless Chromium, Selenium): an
admin makes a token, sees its secret once, approves it with a code from their own authenticator
and revokes it."""

import time

from conftest import Hub, totp
from test_browser import browser, log_in_and_enrol, shot, text_of, wait
from selenium.webdriver.common.by import By


def test_an_admin_makes_a_token_sees_its_secret_once_approves_and_revokes_it(workdir):
    config = workdir / "pipeline.conf"
    marker = "name  = Riverside Family Clinic\n"
    config.write_text(config.read_text().replace(marker, marker + "integration ehr type=api baa=yes\n", 1))
    hub = Hub(workdir, config).start()
    driver = browser()
    try:
        base = f"http://127.0.0.1:{hub.port}"
        driver.execute_cdp_cmd("Browser.grantPermissions", {"origin": base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
        secret_key = log_in_and_enrol(driver, base, "/admin.html?org=riverside-clinic", "dr.admin", "riverside-admin-test-pass")
        enrolled_step = int(time.time()) // 30
        wait(driver).until(lambda d: d.find_element(By.ID, "tokens-empty").is_displayed())
        form = driver.find_element(By.ID, "token-form")
        wait(driver).until(lambda d: [o.text for o in form.find_elements(By.CSS_SELECTOR, "select[name=integrationChoice] option")] == ["ehr"])
        legends = text_of(driver, "#token-scopes fieldset legend")
        assert [legend.split()[0] for legend in legends] == ["Low", "Medium", "High"]
        form.find_element(By.CSS_SELECTOR, "input[value='org:read']").click()
        form.find_element(By.CSS_SELECTOR, "input[value='transcripts:read']").click()
        days = form.find_element(By.NAME, "expiresDays")
        days.clear()
        days.send_keys("30")
        form.find_element(By.NAME, "allowFrom").send_keys("127.0.0.0/8")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        # The secret, once, with the warning that it will not be shown again.
        box = wait(driver).until(lambda d: d.find_element(By.ID, "token-secret") if d.find_element(By.ID, "token-secret").is_displayed() else None)
        assert "will not be shown again" in box.text
        secret = driver.find_element(By.ID, "token-secret-value").get_attribute("value")
        assert secret.startswith("chk_")
        driver.find_element(By.ID, "token-secret-copy").click()
        wait(driver).until(lambda d: d.find_element(By.ID, "token-secret-status").text == "Copied.")
        assert driver.execute_async_script("navigator.clipboard.readText().then(arguments[0])") == secret
        row = "#tokens tbody tr"
        wait(driver).until(lambda d: len(text_of(d, row)) == 1 and "Awaiting approval" in text_of(d, row)[0])
        assert "high" in text_of(driver, row)[0] and "127.0.0.0/8" in text_of(driver, row)[0]
        shot(driver, "admin-token-secret")
        driver.find_element(By.ID, "token-secret-done").click()
        assert not driver.find_element(By.ID, "token-secret").is_displayed()
        assert secret not in driver.page_source and secret.split("_")[2] not in driver.page_source

        # Approving a token one made asks for one's own authenticator's code; a wrong one is refused.
        driver.find_element(By.XPATH, "//tr[@data-token]//button[text()='Approve']").click()
        approve = wait(driver).until(lambda d: d.find_element(By.ID, "token-approve-form") if d.find_element(By.ID, "token-approve-form").is_displayed() else None)
        assert "You made token" in approve.text
        shown = {totp(secret_key, step) for step in range(enrolled_step - 2, enrolled_step + 3)}
        approve.find_element(By.NAME, "totp").send_keys(next(code for code in ("000000", "111111", "222222") if code not in shown))
        approve.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(driver).until(lambda d: "Not approved" in d.find_element(By.ID, "tokens-status").text)
        assert "Awaiting approval" in text_of(driver, row)[0]
        approve.find_element(By.NAME, "totp").send_keys(totp(secret_key, enrolled_step + 1))
        approve.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(driver).until(lambda d: "Approved token" in d.find_element(By.ID, "tokens-status").text)
        wait(driver).until(lambda d: "Active" in text_of(d, row)[0] and "dr.admin" in text_of(d, row)[0])
        assert not driver.find_element(By.ID, "token-approve-form").is_displayed()

        # Revoking asks first.
        driver.find_element(By.XPATH, "//tr[@data-token]//button[text()='Revoke']").click()
        alert = wait(driver).until(lambda d: d.switch_to.alert)
        assert "for good" in alert.text
        alert.accept()
        wait(driver).until(lambda d: "Revoked token" in d.find_element(By.ID, "tokens-status").text)
        wait(driver).until(lambda d: "Revoked" in text_of(d, row)[0])
        assert not driver.find_elements(By.XPATH, "//tr[@data-token]//button")
        wait(driver).until(lambda d: "token.revoked" in text_of(d, "#audit tbody td"))
        assert secret not in driver.page_source
        shot(driver, "admin-tokens")
    finally:
        driver.quit()
        assert hub.stop() == 0
    assert secret not in hub.log_text()
