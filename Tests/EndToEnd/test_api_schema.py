"""docs/openapi.yaml kept true: schemathesis (from PyPI, installed by scripts/setup.sh) runs against
the real hub, with a token of each risk level, and finds no answer that breaks the description
(status, content type, body, headers) and no server error."""

import os
import subprocess
from pathlib import Path

from api_client import HIGH, LOW, MEDIUM, RIVERSIDE, RIVERSIDE_NAME, approve, call, declare, make_token, org_path, set_auth
from conftest import REPO, Hub
from test_api import AUTH_LINE, run

SCHEMATHESIS = Path(os.environ.get("CAREHUB_TEST_TOOLS", "/opt/carehub-test-tools")) / "bin" / "st"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"


def test_the_served_description_is_the_repository_s():
    # The hub serves the file it was built with; it is this one.
    assert b"openapi: 3.1.0" in (REPO / "docs" / "openapi.yaml").read_bytes()


def test_schemathesis_finds_no_answer_outside_the_description_at_any_risk_level(workdir):
    assert SCHEMATHESIS.exists(), f"{SCHEMATHESIS} is missing: run scripts/setup.sh"
    declare(workdir, RIVERSIDE_NAME, "integration ehr type=api baa=yes")
    set_auth(workdir, AUTH_LINE, "api_calls=100000")
    levels = {"low": LOW, "medium": LOW + MEDIUM, "high": LOW + MEDIUM + HIGH}
    tokens = {level: make_token(workdir, RIVERSIDE, "ehr", scopes) for level, scopes in levels.items()}
    hub = Hub(workdir, workdir / "pipeline.conf").start()
    try:
        served = call(hub, "GET", "/api/v1/openapi.yaml")
        assert served.status == 200 and served.body == (REPO / "docs" / "openapi.yaml").read_bytes()
        run(approve(hub, tokens["high"][0]))
        # A conversation with messages, so that reads answer with data and not only 404.
        opened = call(hub, "POST", org_path(RIVERSIDE, "/conversations"), tokens["high"][1], {"text": "Seeded for the schema check."})
        assert opened.status == 201, opened
        config = workdir / "schemathesis.toml"
        config.write_text(f'[parameters]\n"path.org" = "{RIVERSIDE}"\n"path.room" = "{opened.json["id"]}"\n')
        for level, (_, secret) in tokens.items():
            result = subprocess.run(
                [str(SCHEMATHESIS), "--config-file", str(config), "run", f"http://127.0.0.1:{hub.port}/api/v1/openapi.yaml",
                 "--url", f"http://127.0.0.1:{hub.port}", "-H", f"Authorization: Bearer {secret}", "--checks", CHECKS,
                 "--max-examples", "20", "--seed", "1", "--generation-database", "none", "--request-timeout", "20",
                 # libwebsockets drops a request whose URI holds a NUL byte without answering it.
                 "--generation-allow-x00", "false", "--no-color"],
                capture_output=True, text=True, timeout=600, cwd=workdir)
            assert result.returncode == 0, f"{level}-risk token:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
            assert " passed" in result.stdout, result.stdout[-3000:]
        assert call(hub, "GET", org_path(RIVERSIDE), tokens["low"][1]).status == 200  # still answering
    finally:
        hub.stop()
