"""Files in the chat, in real Chromium against the real hub: a patient on a clinic's own site
(another origin, under the clinic's strict CSP) sends photos with the paper-clip and by dropping
them on the chat, with a progress bar for a large one; the nurse sees each picture drawn from its
bytes in the staff console and sends a PDF back, which the patient saves; a file the clinic does
not take, or one too large, is refused in plain words; a file held for the virus check shows as
being checked on both sides."""

import asyncio
import base64
import json
import os
import struct
import zlib

import pytest

from conftest import PASSWORDS, Hub, visitor
from test_attachments import LOTUS, png, upload
from test_browser import browser, shot, wait
from test_console import PDF, take_files
from test_widget import CONTRAST_JS, RECORD_VIOLATIONS, clinic_site, mine, press, status

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as until  # noqa: E402

CLINIC_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lotus Wellness Studio</title>
<script src="{hub}/widget.js" data-org="{org}" data-prechat="name" defer></script>
</head><body><h1>Lotus Wellness Studio</h1></body></html>
"""

# Notes every progress bar a page puts up, however briefly it shows.
RECORD_PROGRESS = """
window.progressBars = [];
const noted = new WeakSet();
new MutationObserver(records => {
  for (const record of records) for (const node of record.addedNodes) {
    if (node.nodeType !== 1) continue;
    for (const bar of node.matches('progress') ? [node] : node.querySelectorAll('progress')) {
      if (noted.has(bar)) continue;
      noted.add(bar);
      window.progressBars.push({ label: bar.getAttribute('aria-label'), max: bar.max });
    }
  }
}).observe(document, { childList: true, subtree: true });
"""

# Drops a file on an element as a browser does: dragenter, dragover, drop, with a DataTransfer.
DROP = """
const [selector, name, type, encoded] = arguments;
const bytes = Uint8Array.from(atob(encoded), c => c.charCodeAt(0));
const transfer = new DataTransfer();
transfer.items.add(new File([bytes], name, { type }));
const zone = document.querySelector(selector);
const taken = ['dragenter', 'dragover', 'drop'].map(kind =>
  !zone.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true, cancelable: true })));
return taken;
"""

# What a page shows of each attachment under `selector`.
ATTACHMENTS = """
return Array.from(document.querySelectorAll(arguments[0] + ' .carehub-attachment')).map(box => {
  const image = box.querySelector('img.carehub-thumb');
  const link = box.querySelector('a.carehub-file-link');
  const name = box.querySelector('.carehub-file-name');
  return { name: link ? link.textContent : name ? name.textContent : null, link: !!link,
           src: image ? image.getAttribute('src') : null, alt: image ? image.alt : null,
           width: image && image.complete ? image.naturalWidth : 0, height: image && image.complete ? image.naturalHeight : 0,
           state: box.dataset.state || null, text: box.textContent,
           mine: box.closest('li').matches('.carehub-mine, .mine') };
});
"""


def noisy_png(width, height):
    """A PNG of random pixels, which do not compress: a file as large as its picture."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def attachments(driver, selector):
    return driver.execute_script(ATTACHMENTS, selector)


@pytest.fixture
def clinic(workdir):
    """Lotus Wellness takes files (at most 1 MB) and lists a clinic's own site, which serves the
    widget under a strict CSP that allows the hub's scripts, styles and connections and blob: images."""
    site, origin, config = clinic_site(workdir, lambda path: (LOTUS, CLINIC_PAGE))
    take_files(workdir)
    config.write_text(config.read_text().replace("hipaa = off\n", f"hipaa = off\nwidget_origins = {origin}\n", 1))
    hub = Hub(workdir, config).start()
    site.hub = f"http://127.0.0.1:{hub.port}"
    site.headers = [("Content-Security-Policy", f"default-src 'none'; script-src {site.hub}; style-src {site.hub}; "
                                                f"connect-src ws://127.0.0.1:{hub.port} {site.hub}; img-src blob:")]
    hub.site = origin
    yield hub
    hub.stop()
    site.shutdown()


def patient_browser(downloads=None):
    driver = browser()
    for source in (RECORD_VIOLATIONS, RECORD_PROGRESS):
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": source})
    if downloads:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver


def start_chat(driver, url):
    driver.get(url)
    wait(driver).until(until.element_to_be_clickable((By.CSS_SELECTOR, ".carehub-bubble"))).click()
    driver.find_element(By.NAME, "name").send_keys("Pat Example")
    driver.find_element(By.CSS_SELECTOR, ".carehub-start").click()
    wait(driver).until(until.visibility_of_element_located((By.CSS_SELECTOR, ".carehub-input")))
    # The paper-clip is ready once the widget has its file code and the chat is joined.
    wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, ".carehub-attach").is_enabled())


def nurse_console(driver, hub, user="coach.sam"):
    """Logs in on the staff console of Lotus (no second factor there) and opens the only room."""
    driver.get(f"http://127.0.0.1:{hub.port}/staff.html?org={LOTUS}")
    form = wait(driver).until(lambda d: d.find_element(By.ID, "login-form"))
    form.find_element(By.NAME, "user").send_keys(user)
    form.find_element(By.NAME, "password").send_keys(PASSWORDS[(LOTUS, user)])
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(until.element_to_be_clickable((By.CSS_SELECTOR, "#rooms li button"))).click()
    wait(driver).until(until.visibility_of_element_located((By.ID, "attach")))


def test_photos_by_the_paper_clip_and_by_dropping_them_reach_the_nurse_as_pictures(clinic, tmp_path):
    hub = clinic
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    small, large, dropped = png(37, 23), noisy_png(400, 300), png(19, 11)
    (tmp_path / "rash.png").write_bytes(small)
    (tmp_path / "wide shot.png").write_bytes(large)
    (tmp_path / "report.pdf").write_bytes(PDF)
    patient, nurse = patient_browser(downloads), browser()
    try:
        start_chat(patient, hub.site + "/")
        attach = patient.find_element(By.CSS_SELECTOR, ".carehub-attach")
        assert attach.get_attribute("aria-label") == "Attach a photo or PDF"
        size = attach.size
        assert size["width"] >= 44 and size["height"] >= 44, size

        # The paper-clip's file input: a photo goes as a message of its own, delivered (✓).
        patient.find_element(By.CSS_SELECTOR, ".carehub-file").send_keys(str(tmp_path / "rash.png"))
        wait(patient).until(lambda d: any(a["name"] == "rash.png" and a["width"] == 37 for a in attachments(d, ".carehub-log")))
        wait(patient).until(lambda d: ["", "✓"] in [row[:2] for row in mine(d)])
        shown = [a for a in attachments(patient, ".carehub-log") if a["name"] == "rash.png"][0]
        assert shown["src"].startswith("blob:") and shown["alt"] == "Picture: rash.png" and shown["mine"], shown

        # Dropped on the chat.
        assert patient.execute_script(DROP, ".carehub-log", "dropped.png", "image/png", base64.b64encode(dropped).decode()) == [True, True, True]
        wait(patient).until(lambda d: any(a["name"] == "dropped.png" and a["width"] == 19 for a in attachments(d, ".carehub-log")))

        # A large photo shows a progress bar while it is sent.
        patient.find_element(By.CSS_SELECTOR, ".carehub-file").send_keys(str(tmp_path / "wide shot.png"))
        wait(patient).until(lambda d: any(a["name"] == "wide shot.png" and a["width"] == 400 for a in attachments(d, ".carehub-log")))
        bars = patient.execute_script("return window.progressBars")
        assert {"label": "Sending wide shot.png", "max": 100} in bars, bars
        assert len(bars) == 1, bars  # the small ones had none
        assert patient.execute_script("return window.violations") == []
        low = [r for r in patient.execute_script(CONTRAST_JS) if r["ratio"] < 4.5]
        assert low == [], low
        shot(patient, "attachments-widget")

        # The nurse sees each picture drawn in her browser from the file's own bytes.
        nurse_console(nurse, hub)
        expected = {"rash.png": (37, 23), "dropped.png": (19, 11), "wide shot.png": (400, 300)}
        wait(nurse).until(lambda d: {a["name"]: (a["width"], a["height"]) for a in attachments(d, "#messages")} == expected)
        for seen in attachments(nurse, "#messages"):
            assert seen["src"].startswith("blob:") and seen["link"] and not seen["mine"], seen

        # She sends a PDF back: a link for both, and the patient saves it under its name.
        nurse.find_element(By.ID, "attach-file").send_keys(str(tmp_path / "report.pdf"))
        wait(nurse).until(lambda d: any(a["name"] == "report.pdf" and a["link"] and a["mine"] for a in attachments(d, "#messages")))
        wait(patient).until(lambda d: any(a["name"] == "report.pdf" and a["link"] for a in attachments(d, ".carehub-theirs")))
        pdf = [a for a in attachments(patient, ".carehub-log") if a["name"] == "report.pdf"][0]
        assert pdf["src"] is None and f"{len(PDF)} bytes" in pdf["text"], pdf
        shot(nurse, "attachments-staff")
        patient.find_element(By.CSS_SELECTOR, ".carehub-theirs a.carehub-file-link").click()
        saved = downloads / "report.pdf"
        wait(patient).until(lambda d: saved.exists() and saved.read_bytes() == PDF)

        # Back on the page later: the history shows the files the same way.
        patient.refresh()
        wait(patient).until(lambda d: sorted(a["name"] for a in attachments(d, ".carehub-log")) == ["dropped.png", "rash.png", "report.pdf", "wide shot.png"])
        wait(patient).until(lambda d: [a["width"] for a in attachments(d, ".carehub-log") if a["name"] == "rash.png"] == [37])
        assert patient.execute_script("return window.violations") == []
    finally:
        patient.quit()
        nurse.quit()


def test_on_a_phone_the_paper_clip_fits_and_is_on_the_keyboard_path(clinic):
    patient = patient_browser()
    try:
        patient.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True})
        start_chat(patient, clinic.site + "/")
        boxes = patient.execute_script(
            "return ['.carehub-panel', '.carehub-input', '.carehub-attach', '.carehub-send', '.carehub-end'].map(s => {"
            "const r = document.querySelector(s).getBoundingClientRect();"
            "return [s, innerWidth, r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight]; })")
        assert all(width == 360 and inside for _, width, inside in boxes), boxes
        # From the message box, Tab reaches the paper-clip.
        patient.find_element(By.CSS_SELECTOR, ".carehub-input").click()
        press(patient, Keys.TAB)
        assert patient.execute_script("return document.activeElement.className") == "carehub-attach"
        assert patient.execute_script("return document.querySelector('.carehub-file').tabIndex") == -1
        shot(patient, "attachments-phone")
    finally:
        patient.quit()


def test_a_file_the_clinic_does_not_take_is_refused_in_plain_words(clinic, tmp_path):
    (tmp_path / "notes.txt").write_text("my symptoms since Monday")
    (tmp_path / "huge.png").write_bytes(noisy_png(800, 640))  # 1.5 MB: over Lotus's 1 MB
    patient = patient_browser()
    try:
        start_chat(patient, clinic.site + "/")
        patient.find_element(By.CSS_SELECTOR, ".carehub-file").send_keys(str(tmp_path / "notes.txt"))
        wait(patient).until(lambda d: status(d) == "You can send photos (JPEG, PNG, GIF, WebP) and PDF files.")
        wait(patient).until(lambda d: ["", "Not sent"] in [row[:2] for row in mine(d)])
        assert "You can send photos" in patient.execute_script("return document.querySelector('.carehub-announce').textContent")

        patient.find_element(By.CSS_SELECTOR, ".carehub-file").send_keys(str(tmp_path / "huge.png"))
        wait(patient).until(lambda d: status(d) == "That file is too big to send (the limit is 1 MB).")
        shown = patient.execute_script("return document.querySelector('.carehub-panel').innerText")
        for code in ("unsupported_type", "too_large", "415", "413"):
            assert code not in shown, shown
        assert patient.execute_script("return window.violations") == []
    finally:
        patient.quit()


def test_a_file_held_for_the_virus_check_shows_as_being_checked_until_it_passes(clinic):
    """The hub's `message` with a held file, then `attachment_ready` or `attachment_refused`, as the
    scan stage sends them, handed to the staff console's frame handler: the files themselves are
    real uploads, fetched from the hub once ready."""
    hub = clinic
    loop = asyncio.new_event_loop()
    nurse = browser()
    try:
        patient, welcome = loop.run_until_complete(visitor(hub, org=LOTUS))
        room = welcome["conversation"]
        held = []
        for name in ("mole.png", "other.png"):
            status, _, answer = upload(hub, welcome["token"], room, png(30, 20), name)
            assert status == 201, (status, answer)
            held.append({**json.loads(answer)["attachment"], "state": "held"})
        nurse_console(nurse, hub)
        wait(nurse).until(lambda d: len(attachments(d, "#messages")) == 2)
        nurse.execute_script("document.getElementById('messages').replaceChildren();"
                             "arguments[1].forEach((attachment, index) => receive({ type: 'message', room: arguments[0],"
                             " seq: 100 + index, from: 'visitor', text: '', at: Date.now(), attachment }));", room, held)
        assert [(a["name"], a["state"], a["link"], a["src"]) for a in attachments(nurse, "#messages")] == [
            ("mole.png", "held", False, None), ("other.png", "held", False, None)]
        assert all("being checked…" in a["text"] for a in attachments(nurse, "#messages"))

        nurse.execute_script("receive({ type: 'attachment_ready', room: arguments[0], attachment: arguments[1] });"
                             "receive({ type: 'attachment_refused', room: arguments[0], attachment: arguments[2], code: 'infected' })",
                             room, held[0]["id"], held[1]["id"])
        wait(nurse).until(lambda d: [(a["name"], a["state"], a["width"]) for a in attachments(d, "#messages")][0] == ("mole.png", "ready", 30))
        refused = attachments(nurse, "#messages")[1]
        assert refused["state"] == "refused" and refused["text"] == "“other.png” was refused because it may contain a virus.", refused
        loop.run_until_complete(patient.close())
    finally:
        nurse.quit()
        loop.close()
