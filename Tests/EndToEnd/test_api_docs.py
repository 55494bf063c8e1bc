"""The curl examples of docs/API.md run as they are written, against the real hub, and do what
the text says."""

import os
import re
import subprocess

from api_client import HIGH, LOW, MEDIUM, RIVERSIDE, RIVERSIDE_NAME, approve, call, declare, make_token, org_path
from conftest import REPO, Hub
from test_api import run


def examples():
    text = (REPO / "docs" / "API.md").read_text()
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def test_the_curl_examples_of_the_api_guide_work(workdir):
    blocks = examples()
    assert len(blocks) >= 6
    declare(workdir, RIVERSIDE_NAME, "integration ehr type=api baa=yes")
    token_id, secret = make_token(workdir, RIVERSIDE, "ehr", LOW + MEDIUM + HIGH)
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        run(approve(hub, token_id))
        room = call(hub, "POST", org_path(RIVERSIDE, "/conversations"), secret, {"text": "Seeded for the guide."}).json["id"]
        env = dict(os.environ, CAREHUB=f"http://127.0.0.1:{hub.port}", ORG=RIVERSIDE, TOKEN=secret, ROOM=room)
        outputs = []
        for block in blocks:
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], env=env, cwd=workdir, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"{block}\n{done.stdout}\n{done.stderr}"
            outputs.append(done.stdout)
        assert outputs[0].rstrip().endswith("304"), outputs[0]
        assert '"visitorToken"' in outputs[2]
        assert '"complete":true' in outputs[3] and "Seeded for the guide." in outputs[3]
        assert f'"id":"{room}"' in outputs[4] and '"endedAt":null' not in outputs[4]
        assert (workdir / "audit.jsonl").read_text().count("\n") > 5 and '"holds":true' in outputs[5]
        assert '"disabled":true' in outputs[6]
        assert outputs[7].rstrip().endswith("204") and "whsec_" in outputs[7] and "ehr.example.org" in outputs[7], outputs[7]
        assert secret not in hub.log_text()
    finally:
        hub.stop()
