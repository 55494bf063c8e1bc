"""/healthz, which a load balancer asks: the node takes work and can commit."""

import json
import sqlite3
import urllib.error
import urllib.request

from conftest import TIMEOUT


def health(hub):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{hub.port}/healthz", timeout=TIMEOUT) as answer:
            return answer.status, json.loads(answer.read()), answer.headers["Cache-Control"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers["Cache-Control"]


def test_a_running_hub_is_healthy_and_its_probe_is_a_real_commit(hub):
    assert health(hub) == (200, {"status": "ok"}, "no-store")
    # The probe wrote the database's health row: the node could commit.
    with sqlite3.connect(f"file:{hub.data / 'carehub.sqlite'}?mode=ro", uri=True) as db:
        (checked_at,) = db.execute("SELECT checked_at FROM health WHERE id = 1").fetchone()
    assert checked_at > 0

