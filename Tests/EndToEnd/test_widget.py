"""A patient's day in the chat widget, in real Chromium against the real hub: the keyboard path,
the form's limits, errors in plain words, the unread badge, times, contrast, a hub restart in the
middle of the chat and a second tab that continues it."""

import asyncio
import queue
import re
import signal
import subprocess
import threading
import time
from datetime import datetime, timezone

import pytest

from conftest import BIN, REPO, TIMEOUT, Hub, require_browser, staff

webdriver = require_browser()
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as until  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from test_browser import browser, shot, text_of  # noqa: E402

ORG = "riverside-clinic"
RECONNECT_TIMEOUT = 90  # the widget's back-off is capped at 30 s; generous on a busy machine
PROTOCOL_CODES = ("too_large", "rate_limited", "invalid_field", "conversation_ended", "unavailable",
                  "auth_failed", "insecure_transport", "origin_refused", "internal")

# Computes, in the page, the contrast ratio (WCAG 2) of every text of the widget against the
# background it is drawn on, from the computed colours.
CONTRAST_JS = r"""
const parse = c => { const p = c.match(/[\d.]+/g).map(Number); return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
const over = (top, base) => ({ r: top.r * top.a + base.r * (1 - top.a), g: top.g * top.a + base.g * (1 - top.a), b: top.b * top.a + base.b * (1 - top.a), a: 1 });
const background = node => {
  const layers = [];
  for (let n = node; n; n = n.parentElement) {
    const bg = parse(getComputedStyle(n).backgroundColor);
    if (bg.a > 0) { layers.push(bg); if (bg.a >= 1) break; }
  }
  return layers.reverse().reduce((base, layer) => over(layer, base), { r: 255, g: 255, b: 255, a: 1 });
};
const luminance = c => {
  const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
};
const ratio = (fg, bg) => { const a = luminance(fg) + 0.05, b = luminance(bg) + 0.05; return a > b ? a / b : b / a; };
const roots = [document.querySelector('.carehub-bubble'), document.querySelector('.carehub-panel')];
const results = [];
const measure = (node, what, colour) => {
  const bg = background(node);
  results.push({ what: what, ratio: ratio(over(parse(colour), bg), bg) });
};
for (const root of roots) {
  for (const node of [root, ...root.querySelectorAll('*')]) {
    const own = Array.from(node.childNodes).some(c => c.nodeType === 3 && c.textContent.trim());
    const always = node.matches('.carehub-typing, .carehub-field-error, .carehub-status');
    if (!own && !always) continue;
    if (!own && node.getClientRects().length === 0) continue;
    measure(node, node.className + ' "' + node.textContent.slice(0, 30) + '"', getComputedStyle(node).color);
  }
  for (const box of root.querySelectorAll('input, textarea')) {
    if (box.placeholder) measure(box, 'placeholder of ' + box.className, getComputedStyle(box, '::placeholder').color);
  }
}
return results;
"""


class SamePortHub(Hub):
    """A hub that, started again after a stop, listens on the port it had, as a real one would."""

    listen = "127.0.0.1:0"

    def start(self):
        self.lines = queue.Queue()
        self.log_file = open(self.log, "a")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--config", str(self.config), "--data", str(self.data),
             "--listen", self.listen, "--web", str(REPO / "web-static"), "--log-level", "debug"],
            stdout=subprocess.PIPE, stderr=self.log_file, text=True, cwd=self.workdir,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        line = self.expect_line("CareHub listening on")
        self.port = int(line.split("://127.0.0.1:")[1].split("/")[0])
        self.listen = f"127.0.0.1:{self.port}"
        return self


def wait(driver, timeout=TIMEOUT):
    # Pages re-render lists as frames arrive; an element found a moment ago may be gone.
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))


def status(driver):
    return driver.find_element(By.CSS_SELECTOR, ".carehub-status").text


def announced(driver):
    return driver.execute_script("return document.querySelector('.carehub-announce').textContent")


def focused_class(driver):
    return driver.execute_script("return document.activeElement.className || document.activeElement.tagName")


def focus_is_in_panel(driver):
    return driver.execute_script("return document.querySelector('.carehub-panel').contains(document.activeElement)")


def press(driver, *keys):
    ActionChains(driver).send_keys(*keys).perform()


def set_value(driver, selector, value):
    """Fills a field as typing would (send_keys is slow for thousands of characters)."""
    driver.execute_script(
        "const box = document.querySelector(arguments[0]); box.value = arguments[1];"
        "box.dispatchEvent(new Event('input', { bubbles: true }));", selector, value)


def start_chat(driver, base, name="Pat Example", reason="Question about my prescription"):
    driver.get(base + "/widget-demo.html")
    wait(driver).until(until.element_to_be_clickable((By.CSS_SELECTOR, ".carehub-bubble"))).click()
    driver.find_element(By.NAME, "name").send_keys(name)
    driver.find_element(By.NAME, "reason").send_keys(reason)
    driver.find_element(By.CSS_SELECTOR, ".carehub-start").click()
    wait(driver).until(until.visibility_of_element_located((By.CSS_SELECTOR, ".carehub-input")))


def send_message(driver, text):
    box = driver.find_element(By.CSS_SELECTOR, ".carehub-input")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def mine(driver):
    """The patient's messages as (text, state) pairs."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.carehub-mine')).map(li => ["
        "li.querySelector('.carehub-text').textContent,"
        "(li.querySelector('.carehub-state, .carehub-retry') || {}).textContent])")


def delivered(driver, text):
    return [text, "✓"] in mine(driver)


def storage_dump(driver):
    return driver.execute_script(
        "const dump = s => Object.fromEntries(Array.from({ length: s.length }, (_, i) => [s.key(i), s.getItem(s.key(i))]));"
        "return { local: dump(localStorage), session: dump(sessionStorage) };")


def iso(at):
    return datetime.fromtimestamp(at / 1000, timezone.utc)


def assert_no_protocol_text(driver):
    shown = driver.execute_script(
        "return document.querySelector('.carehub-panel').innerText + ' ' + document.querySelector('.carehub-announce').textContent")
    for code in PROTOCOL_CODES:
        assert code not in shown, f"the patient was shown {code!r}: {shown}"


def test_a_patient_on_the_keyboard_with_limits_badge_times_and_contrast(hub):
    loop = asyncio.new_event_loop()
    patient = browser()
    nurse = None
    try:
        base = f"http://127.0.0.1:{hub.port}"
        patient.get(base + "/widget-demo.html")
        bubble = wait(patient).until(until.element_to_be_clickable((By.CSS_SELECTOR, ".carehub-bubble")))
        panel = patient.find_element(By.CSS_SELECTOR, ".carehub-panel")
        assert bubble.get_attribute("aria-controls") == panel.get_attribute("id")
        assert bubble.get_attribute("aria-expanded") == "false"

        # Tab reaches the bubble; Enter opens the panel with the focus inside it.
        press(patient, Keys.TAB)
        assert "carehub-bubble" in focused_class(patient)
        press(patient, Keys.ENTER)
        wait(patient).until(lambda d: panel.is_displayed())
        assert bubble.get_attribute("aria-expanded") == "true"
        assert focus_is_in_panel(patient)
        assert patient.switch_to.active_element.get_attribute("name") == "name"
        shot(patient, "widget-keyboard-open")
        # Escape closes it and gives the focus back to the bubble.
        press(patient, Keys.ESCAPE)
        wait(patient).until(lambda d: not panel.is_displayed())
        assert "carehub-bubble" in focused_class(patient)
        assert bubble.get_attribute("aria-expanded") == "false"
        # So does the panel's close button.
        press(patient, Keys.ENTER)
        wait(patient).until(lambda d: panel.is_displayed())
        patient.find_element(By.CSS_SELECTOR, ".carehub-close").click()
        wait(patient).until(lambda d: not panel.is_displayed())
        assert "carehub-bubble" in focused_class(patient)
        bubble.click()
        wait(patient).until(lambda d: panel.is_displayed())

        # Inputs are at least 16 px, so that phones do not zoom into them.
        sizes = patient.execute_script(
            "return Array.from(document.querySelectorAll('.carehub-panel input, .carehub-panel textarea'))"
            ".map(box => [box.name || box.className, parseFloat(getComputedStyle(box).fontSize)])")
        assert len(sizes) >= 4 and all(size >= 16 for _, size in sizes), sizes

        # Answers over the hub's limits are caught in the form, in bytes: 501 "é" are 1,002.
        set_value(patient, ".carehub-prechat [name=name]", "P" * 201)
        set_value(patient, ".carehub-prechat [name=reason]", "é" * 501)
        patient.find_element(By.CSS_SELECTOR, ".carehub-start").click()
        errors = text_of(patient, ".carehub-prechat .carehub-field-error")
        assert errors == ["This is too long; please shorten it.", "", "This is too long; please shorten it."], errors
        assert patient.find_element(By.NAME, "name").get_attribute("aria-invalid") == "true"
        assert patient.switch_to.active_element.get_attribute("name") == "name"
        assert not patient.find_element(By.CSS_SELECTOR, ".carehub-input").is_displayed()
        assert "shorten" in status(patient)
        shot(patient, "widget-prechat-too-long")
        set_value(patient, ".carehub-prechat [name=name]", "P" * 200)
        set_value(patient, ".carehub-prechat [name=reason]", "é" * 500)
        assert text_of(patient, ".carehub-prechat .carehub-field-error") == ["", "", ""]
        set_value(patient, ".carehub-prechat [name=name]", "Pat Example")
        set_value(patient, ".carehub-prechat [name=reason]", "Question about my prescription")
        patient.find_element(By.CSS_SELECTOR, ".carehub-start").click()
        wait(patient).until(until.visibility_of_element_located((By.CSS_SELECTOR, ".carehub-input")))
        wait(patient).until(lambda d: "as soon as they can" in status(d))
        assert "shortly" not in status(patient)
        assert patient.switch_to.active_element.get_attribute("class") == "carehub-input"

        # A message over 16,384 bytes is refused in plain words, and its text stays to be edited.
        too_long = "€" * 5462  # 16,386 bytes
        set_value(patient, ".carehub-input", too_long)
        patient.find_element(By.CSS_SELECTOR, ".carehub-input").send_keys(Keys.ENTER)
        wait(patient).until(lambda d: "Your message is too long" in status(d))
        assert "Your message is too long" in announced(patient)
        assert patient.find_element(By.CSS_SELECTOR, ".carehub-input").get_attribute("value") == too_long
        assert mine(patient) == []
        set_value(patient, ".carehub-input", "")

        send_message(patient, "Hello, can I take it with food?")
        wait(patient).until(lambda d: delivered(d, "Hello, can I take it with food?"))

        # Sending very fast meets the hub's limit: the patient reads why, and may retry each one.
        patient.execute_script(
            "const box = document.querySelector('.carehub-input'), form = document.querySelector('.carehub-form');"
            "for (let i = 0; i < 30; i++) { box.value = 'quick ' + i; form.requestSubmit(); }")
        wait(patient).until(lambda d: "You are sending messages very quickly; please wait a moment." in status(d))
        wait(patient).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".carehub-failed .carehub-retry")) > 0)
        assert_no_protocol_text(patient)

        # The nurse reads the chat and types: the typing indicator shows.
        nurse, _ = loop.run_until_complete(staff(hub))
        room = loop.run_until_complete(nurse.request({"type": "rooms", "id": "r"}, "rooms"))["rooms"][0]["room"]
        subscribed = loop.run_until_complete(nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed"))
        assert "Hello, can I take it with food?" in [entry["text"] for entry in subscribed["history"]]
        loop.run_until_complete(nurse.send({"type": "typing", "room": room}))
        wait(patient).until(lambda d: "nurse.joy is typing…" in d.find_element(By.CSS_SELECTOR, ".carehub-typing").text)

        # Every text in the widget meets WCAG AA (4.5:1), the typing indicator included.
        results = patient.execute_script(CONTRAST_JS)
        measured = {r["what"].split(" ")[0] for r in results}
        assert {"carehub-typing", "carehub-bubble-label", "carehub-status", "carehub-from", "carehub-time", "carehub-retry"} <= measured, measured
        low = [r for r in results if r["ratio"] < 4.5]
        assert low == [], low
        shot(patient, "widget-typing-and-retry")

        # The panel is closed when the reply comes: the bubble shows an unread badge.
        patient.find_element(By.CSS_SELECTOR, ".carehub-input").click()
        press(patient, Keys.ESCAPE)
        wait(patient).until(lambda d: not panel.is_displayed())
        reply = loop.run_until_complete(nurse.request({"type": "send", "room": room, "text": "Yes, with food is best.", "id": "n1"}, "ack"))
        badge = patient.find_element(By.CSS_SELECTOR, ".carehub-badge")
        wait(patient).until(lambda d: badge.is_displayed())
        assert badge.text == "1"
        assert "1 new reply" in bubble.get_attribute("aria-label")
        assert "New reply from nurse.joy" in announced(patient)
        contrast = [r for r in patient.execute_script(CONTRAST_JS) if r["what"].startswith("carehub-badge")]
        assert contrast and all(r["ratio"] >= 4.5 for r in contrast), contrast
        shot(patient, "widget-unread-badge")
        bubble.click()
        wait(patient).until(lambda d: panel.is_displayed())
        assert not badge.is_displayed()
        assert "Yes, with food is best." in text_of(patient, ".carehub-theirs .carehub-text")
        # A retried message gets through, and the limit's sentence goes away.
        patient.find_element(By.CSS_SELECTOR, ".carehub-retry").click()
        wait(patient).until(lambda d: "You are sending messages very quickly" not in status(d))
        assert status(patient) == "Connected."

        # Every message shows its time, from the hub's `at`.
        stamps = patient.execute_script(
            "return Array.from(document.querySelectorAll('.carehub-log li')).map(li => {"
            "const t = li.querySelector('time'); return [li.querySelector('.carehub-text').textContent, t.dateTime, t.textContent]; })")
        for text, when, label in stamps:
            if text.startswith("quick ") and not when:
                continue  # refused by the limit: never stored, so it has no time
            assert when and re.search(r"\d{1,2}:\d{2}", label), (text, when, label)
        reply_stamp = [s for s in stamps if s[0] == "Yes, with food is best."][0]
        assert datetime.fromisoformat(reply_stamp[1].replace("Z", "+00:00")) == iso(reply["at"])
        assert not any(re.search(r"Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec", label) for _, _, label in stamps)
        assert_no_protocol_text(patient)

        # On a phone's screen the panel and the bubble fit in the viewport.
        patient.set_window_size(390, 844)
        fits = patient.execute_script(
            "return ['.carehub-panel', '.carehub-bubble'].map(s => { const r = document.querySelector(s).getBoundingClientRect();"
            "return [s, r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight]; })")
        assert all(ok for _, ok in fits), fits
        shot(patient, "widget-phone")
    finally:
        patient.quit()
        if nurse:
            loop.run_until_complete(nurse.close())
        loop.close()


def test_the_hub_restarts_in_the_middle_of_a_chat(workdir):
    hub = SamePortHub(workdir, workdir / "pipeline.conf").start()
    loop = asyncio.new_event_loop()
    patient = browser()
    nurse = None
    try:
        base = f"http://127.0.0.1:{hub.port}"
        start_chat(patient, base)
        send_message(patient, "Before the break")
        wait(patient).until(lambda d: delivered(d, "Before the break"))

        # The hub goes away: the widget says so and keeps trying.
        assert hub.stop() == 0
        wait(patient).until(lambda d: "We could not reach the clinic; retrying…" in status(d))
        assert "Connection lost" in announced(patient)
        # A message written meanwhile is kept in the page, marked, with a retry button.
        send_message(patient, "Are you still there?")
        wait(patient).until(lambda d: ["Are you still there?", "Not sent. Tap to retry"] in mine(d))
        assert_no_protocol_text(patient)
        shot(patient, "widget-retrying")
        # Nothing the patient wrote is in the browser's storage: only the reconnect token.
        dump = storage_dump(patient)
        kept = " ".join(list(dump["local"].values()) + list(dump["session"].values()))
        assert "Are you still there?" not in kept and "Before the break" not in kept and "Pat Example" not in kept
        assert "prescription" not in kept
        assert list(dump["local"]) == [f"carehub.widget.{base}.{ORG}"], dump

        # The hub is back on the same address: the chat resumes with its token.
        hub.start()
        wait(patient, RECONNECT_TIMEOUT).until(lambda d: "Reconnected." in status(d))
        assert "Reconnected." in announced(patient)
        patient.find_element(By.CSS_SELECTOR, ".carehub-retry").click()
        wait(patient).until(lambda d: delivered(d, "Are you still there?"))
        shot(patient, "widget-reconnected")

        nurse, _ = loop.run_until_complete(staff(hub))
        rooms = loop.run_until_complete(nurse.request({"type": "rooms", "id": "r"}, "rooms"))["rooms"]
        assert len(rooms) == 1
        room = rooms[0]["room"]
        subscribed = loop.run_until_complete(nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed"))
        assert [entry["text"] for entry in subscribed["history"]] == ["Before the break", "Are you still there?"]
        loop.run_until_complete(nurse.request({"type": "send", "room": room, "text": "Still here.", "id": "n1"}, "ack"))
        wait(patient).until(lambda d: "Still here." in text_of(d, ".carehub-theirs .carehub-text"))
        loop.run_until_complete(nurse.close())
        nurse = None

        # The hub stalls with a message in flight, then dies: no ack came, so it is offered again.
        hub.signal(signal.SIGSTOP)
        send_message(patient, "Did this one arrive?")
        wait(patient).until(lambda d: ["Did this one arrive?", "Sending…"] in mine(d))
        hub.signal(signal.SIGKILL)
        hub.proc.wait()
        hub.stop()
        wait(patient).until(lambda d: ["Did this one arrive?", "Not sent. Tap to retry"] in mine(d))
        wait(patient).until(lambda d: "We could not reach the clinic; retrying…" in status(d))
        hub.start()
        wait(patient, RECONNECT_TIMEOUT).until(lambda d: "Reconnected." in status(d))
        patient.find_element(By.CSS_SELECTOR, ".carehub-retry").click()
        wait(patient).until(lambda d: delivered(d, "Did this one arrive?"))
        nurse, _ = loop.run_until_complete(staff(hub))
        subscribed = loop.run_until_complete(nurse.request({"type": "subscribe", "room": room, "id": "s2"}, "subscribed"))
        assert [entry["text"] for entry in subscribed["history"]] == ["Before the break", "Are you still there?", "Still here.", "Did this one arrive?"]
    finally:
        patient.quit()
        if nurse:
            loop.run_until_complete(nurse.close())
        loop.close()
        hub.stop()


# Moves the page's clock to one minute past the coming midnight, to see messages of "another day".
TOMORROW = """
(() => {
  const Real = Date, midnight = new Real();
  midnight.setHours(24, 1, 0, 0);
  const shift = midnight - Real.now();
  class Later extends Real {
    constructor(...args) { if (args.length === 0) super(Real.now() + shift); else super(...args); }
    static now() { return Real.now() + shift; }
  }
  window.Date = Later;
})();
"""


def test_a_second_tab_continues_the_same_chat(hub):
    loop = asyncio.new_event_loop()
    patient = browser()
    nurse = None
    try:
        base = f"http://127.0.0.1:{hub.port}"
        start_chat(patient, base)
        send_message(patient, "From the first tab")
        wait(patient).until(lambda d: delivered(d, "From the first tab"))
        first = patient.current_window_handle

        # The clinic's page in a second tab shows the same chat and can write to it.
        patient.switch_to.new_window("tab")
        patient.get(base + "/widget-demo.html")
        wait(patient).until(lambda d: delivered(d, "From the first tab"))
        assert not patient.find_element(By.CSS_SELECTOR, ".carehub-prechat").is_displayed()
        send_message(patient, "From the second tab")
        wait(patient).until(lambda d: delivered(d, "From the second tab"))
        shot(patient, "widget-second-tab")
        # They share the one thing the widget keeps: the reconnect token, keyed by hub and organisation.
        assert list(storage_dump(patient)["local"]) == [f"carehub.widget.{base}.{ORG}"]
        second = patient.current_window_handle
        patient.switch_to.window(first)
        wait(patient).until(lambda d: delivered(d, "From the second tab"))

        nurse, _ = loop.run_until_complete(staff(hub))
        rooms = loop.run_until_complete(nurse.request({"type": "rooms", "id": "r"}, "rooms"))["rooms"]
        assert len(rooms) == 1
        room = rooms[0]["room"]
        subscribed = loop.run_until_complete(nurse.request({"type": "subscribe", "room": room, "id": "s"}, "subscribed"))
        assert [entry["text"] for entry in subscribed["history"]] == ["From the first tab", "From the second tab"]
        reply = loop.run_until_complete(nurse.request({"type": "send", "room": room, "text": "Both tabs see this.", "id": "n1"}, "ack"))
        for handle in (first, second):
            patient.switch_to.window(handle)
            wait(patient).until(lambda d: "Both tabs see this." in text_of(d, ".carehub-theirs .carehub-text"))

        # Seen from another day, a message shows its date as well as its time.
        patient.switch_to.new_window("tab")
        patient.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TOMORROW})
        patient.get(base + "/widget-demo.html")
        wait(patient).until(lambda d: "Both tabs see this." in text_of(d, ".carehub-theirs .carehub-text"))
        label = patient.find_element(By.CSS_SELECTOR, ".carehub-theirs time").text
        sent = datetime.fromtimestamp(reply["at"] / 1000)
        assert sent.strftime("%b") in label and str(sent.day) in label and re.search(r"\d{1,2}:\d{2}", label), label
        shot(patient, "widget-another-day")
        patient.close()

        # Ending the chat in one tab ends it in the other, and forgets the token.
        patient.switch_to.window(second)
        patient.find_element(By.CSS_SELECTOR, ".carehub-end").click()
        patient.switch_to.alert.accept()
        wait(patient).until(lambda d: "This chat has ended" in status(d))
        patient.switch_to.window(first)
        wait(patient).until(lambda d: "This chat has ended" in status(d))
        assert "This chat has ended" in announced(patient)
        assert storage_dump(patient)["local"] == {}
    finally:
        patient.quit()
        if nurse:
            loop.run_until_complete(nurse.close())
        loop.close()


CLINIC_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A clinic's own site</title>
<script src="{hub}/widget.js" data-org="{org}" data-prechat="name" defer></script>
</head><body><h1>A clinic's own site</h1></body></html>
"""

# Collects the page's CSP violations from before its first script runs.
RECORD_VIOLATIONS = """
window.violations = [];
document.addEventListener('securitypolicyviolation', e => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def clinic_site(workdir, page):
    """A clinic's own site on another origin, listed in Riverside's `widget_origins`: `page(path)`
    gives each path's organisation and HTML (with {hub} and {org} to fill in); `site.headers`
    go on every answer. Returns the site, its origin and the configuration to start the hub with."""
    import http.server

    class ClinicSite(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            org, html = page(self.path)
            body = html.format(hub=self.server.hub, org=org).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            for name, value in self.server.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ClinicSite)
    site.headers = []
    threading.Thread(target=site.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{site.server_address[1]}"
    config = workdir / "pipeline.conf"
    config.write_text(config.read_text().replace("hipaa = on\n", f"hipaa = on\nwidget_origins = {origin}\n", 1))
    return site, origin, config


def chat_on_clinic_page(driver, url, first):
    """Starts a chat from the widget on a clinic's page (its pre-chat form asks only the name) and
    sends `first`, until it is delivered."""
    driver.get(url)
    wait(driver).until(until.element_to_be_clickable((By.CSS_SELECTOR, ".carehub-bubble"))).click()
    driver.find_element(By.NAME, "name").send_keys("Pat Example")
    driver.find_element(By.CSS_SELECTOR, ".carehub-start").click()
    wait(driver).until(until.visibility_of_element_located((By.CSS_SELECTOR, ".carehub-input")))
    send_message(driver, first)
    wait(driver).until(lambda d: delivered(d, first))


def test_the_widget_on_a_clinic_site_under_its_own_strict_csp(workdir):
    def page(path):
        org = "lotus-wellness" if path.startswith("/lotus") else ORG
        return org, "<!doctype html><title>No chat here</title>" if path == "/blank" else CLINIC_PAGE

    site, origin, config = clinic_site(workdir, page)
    hub = Hub(workdir, config).start()
    hub_origin = f"http://127.0.0.1:{hub.port}"
    site.hub = hub_origin
    site.headers = [("Content-Security-Policy", f"default-src 'none'; script-src {hub_origin}; style-src {hub_origin}; "
                                                f"connect-src ws://127.0.0.1:{hub.port}")]
    patient = browser()
    try:
        patient.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
        # Riverside lists the clinic's site: the widget works there, styled, with nothing blocked.
        chat_on_clinic_page(patient, origin + "/riverside", "Hello from the clinic's site")
        assert patient.execute_script(
            "return getComputedStyle(document.querySelector('.carehub-bubble')).position") == "fixed"
        assert patient.execute_script("return window.violations") == []
        shot(patient, "widget-clinic-site")

        # Lotus lists no site: the hub refuses the page, and the patient is told so in plain words.
        patient.get(origin + "/lotus")
        wait(patient).until(until.element_to_be_clickable((By.CSS_SELECTOR, ".carehub-bubble"))).click()
        patient.find_element(By.NAME, "name").send_keys("Pat Example")
        patient.find_element(By.CSS_SELECTOR, ".carehub-start").click()
        wait(patient).until(lambda d: "Chat is not available on this page" in status(d))
        assert "Chat is not available on this page" in announced(patient)
        assert_no_protocol_text(patient)
        assert patient.execute_script("return window.violations") == []

        # A saved token the hub no longer accepts: the patient may start a new chat.
        patient.get(origin + "/blank")
        patient.execute_script(
            "localStorage.setItem(arguments[0], JSON.stringify({ token: 'no-longer-valid', savedAt: Date.now() }))",
            f"carehub.widget.{hub_origin}.{ORG}")
        patient.get(origin + "/riverside")
        wait(patient).until(lambda d: "Your previous chat has ended. You can start a new one." in status(d))
        assert patient.find_element(By.CSS_SELECTOR, ".carehub-prechat").is_displayed()
        assert storage_dump(patient)["local"] == {}
        assert_no_protocol_text(patient)
    finally:
        patient.quit()
        hub.stop()
        site.shutdown()


def test_leaving_the_clinic_site_closes_the_chat_and_coming_back_continues_it(workdir):
    """The clinic's own pages are the clinic's to cache: a browser may keep the page the patient
    left for Back, with the widget's socket open and silent. The widget closes it on leaving, so the
    hub sees the patient gone, and continues the chat when the patient comes back."""
    # No Cache-Control at all: the browser may keep the pages for Back.
    site, origin, config = clinic_site(
        workdir, lambda path: (ORG, "<!doctype html><title>Opening times</title>" if path == "/times" else CLINIC_PAGE))
    hub = Hub(workdir, config).start()
    site.hub = f"http://127.0.0.1:{hub.port}"
    counts = lambda: (hub.log_text().count("connection opened"), hub.log_text().count("connection closed"))
    patient = browser()
    try:
        patient.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
            "source": "addEventListener('pageshow', e => { if (e.persisted) window.restoredFromCache = true; });"})
        chat_on_clinic_page(patient, origin + "/", "Before I look at your opening times")

        patient.get(origin + "/times")
        deadline = time.monotonic() + TIMEOUT  # a hang guard, not a timing assertion
        while counts()[1] < counts()[0] and time.monotonic() < deadline:
            time.sleep(0.1)
        opened, closed = counts()
        assert opened >= 1 and closed == opened, f"{opened} opened, {closed} closed"

        patient.back()
        # The page came back from the browser's cache, sockets and all, not loaded anew.
        wait(patient).until(lambda d: d.execute_script("return window.restoredFromCache === true"))
        wait(patient).until(lambda d: counts()[0] > opened)
        send_message(patient, "Back again")
        wait(patient).until(lambda d: delivered(d, "Back again"))
        assert [text for text, _ in mine(patient)] == ["Before I look at your opening times", "Back again"], mine(patient)
    finally:
        patient.quit()
        hub.stop()
        site.shutdown()
