"""A conversation an integration opens to a patient, continued in the clinic's widget: the page is
opened with #carehub-chat=TOKEN, the widget shows the clinic's message, the patient answers, and
the token leaves the address bar."""

from api_client import RIVERSIDE, RIVERSIDE_NAME, approve, call, declare, make_token, org_path
from conftest import Hub
from test_api import run
from test_widget import By, browser, delivered, send_message, shot, text_of, wait

FIRST = "Your test results are ready. Reply here with any questions."


def test_a_patient_continues_in_the_widget_the_chat_an_integration_opened(workdir):
    declare(workdir, RIVERSIDE_NAME, "integration scheduler type=api baa=yes")
    token_id, secret = make_token(workdir, RIVERSIDE, "scheduler", ["conversations:open", "messages:read"])
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    patient = browser()
    try:
        run(approve(hub, token_id))
        opened = call(hub, "POST", org_path(RIVERSIDE, "/conversations"), secret, {"text": FIRST})
        assert opened.status == 201, opened
        base = f"http://127.0.0.1:{hub.port}"
        patient.get(f"{base}/widget-demo.html#carehub-chat={opened.json['visitorToken']}")
        wait(patient).until(lambda d: FIRST in text_of(d, ".carehub-theirs .carehub-text"))
        assert text_of(patient, ".carehub-theirs")[0].startswith("Riverside Family Clinic\n")
        assert "carehub-chat" not in patient.current_url
        assert not patient.find_element(By.CSS_SELECTOR, ".carehub-prechat").is_displayed()
        send_message(patient, "Thank you, I will call tomorrow.")
        wait(patient).until(lambda d: delivered(d, "Thank you, I will call tomorrow."))
        shot(patient, "widget-opened-by-integration")
        messages = call(hub, "GET", org_path(RIVERSIDE, f"/conversations/{opened.json['id']}/messages"), secret).json["messages"]
        assert [(m["from"], m["text"]) for m in messages] == [("integration:scheduler", FIRST), ("visitor", "Thank you, I will call tomorrow.")]
    finally:
        patient.quit()
        hub.stop()
