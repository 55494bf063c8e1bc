"""Single sign-on in a real browser (headless Chromium): the staff console offers "Log in with …"
for an organisation with SSO, the person signs in on the provider's own login page (glewlwyd's),
comes back to the console logged in, and the ticket is gone from the address. Where the provider
vouched for one factor in a HIPAA organisation, the console asks for the authenticator code."""

import asyncio

from selenium.webdriver.common.by import By

from conftest import AUTHENTICATOR, staff
from oidc_provider import new_otp_secret
from test_browser import browser, shot, wait
from test_sso import ORG, PROVIDER, sso_hub  # noqa: F401 (the fixture)

import pytest


def open_console(driver, hub, idp):
    base = f"http://127.0.0.1:{hub.port}"
    # The provider sends the browser back to the hub, which sends it on to the console.
    idp.redirect_uris.append(f"{base}/staff.html")
    driver.get(f"{base}/staff.html?org={ORG}")
    button = wait(driver).until(lambda d: d.find_element(By.ID, "sso-button") if d.find_element(By.ID, "sso-login").is_displayed() else None)
    assert button.text == f"Log in with {PROVIDER}"
    button.click()
    wait(driver).until(lambda d: d.current_url.startswith(idp.base))
    return base


def test_a_nurse_logs_in_with_the_clinics_provider_in_the_browser(sso_hub):
    hub, idp = sso_hub
    idp.add_user("nurse.kim", "kim-idp-pass-1", name="Kim Park", otp_secret=new_otp_secret())
    driver = browser()
    try:
        base = open_console(driver, hub, idp)
        landed = idp.browser_login(driver, "nurse.kim", "kim-idp-pass-1", otp=True)
        assert landed.startswith(f"{base}/staff.html"), landed
        wait(driver).until(lambda d: d.find_element(By.ID, "console-view").is_displayed())
        assert wait(driver).until(lambda d: d.find_element(By.ID, "who").text) == f"nurse.kim · {ORG} · staff"
        # The one-time ticket is not left in the address, its history or a bookmark.
        assert "sso=" not in driver.current_url and driver.execute_script("return location.hash") == f"#org={ORG}"
        shot(driver, "sso-console")
    finally:
        driver.quit()


@pytest.mark.parametrize("sso_hub", [{"scopes": "openid"}], indirect=True)
def test_the_console_asks_for_the_code_when_the_provider_showed_one_factor(sso_hub):
    hub, idp = sso_hub
    asyncio.run(_enrol(hub))
    idp.add_user("nurse.joy", "joy-idp-pass-1")
    driver = browser()
    try:
        open_console(driver, hub, idp)
        idp.browser_login(driver, "nurse.joy", "joy-idp-pass-1")
        form = wait(driver).until(lambda d: d.find_element(By.ID, "sso-code-form") if d.find_element(By.ID, "sso-code-view").is_displayed() else None)
        shot(driver, "sso-code")
        form.find_element(By.NAME, "totp").send_keys(AUTHENTICATOR.code((hub.data, ORG, "nurse.joy")))
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(driver).until(lambda d: d.find_element(By.ID, "console-view").is_displayed())
        assert driver.find_element(By.ID, "who").text == f"nurse.joy · {ORG} · staff"
    finally:
        driver.quit()


async def _enrol(hub):
    client, _ = await staff(hub)
    await client.close()
