"""Integration tokens from the hub's host: `carehub tokens create|list|approve|revoke` against the
data directory, with the secret shown once and kept only as a digest, PHI scopes waiting for
another operator's approval, the BAA rule of HIPAA mode, and every step audited."""

import json
import sqlite3

from conftest import carehub

RIVERSIDE = "riverside-clinic"


def declare(workdir, *lines):
    """Adds integration lines to the HIPAA clinic's section."""
    config = workdir / "pipeline.conf"
    marker = "name  = Riverside Family Clinic\n"
    text = config.read_text()
    assert marker in text
    config.write_text(text.replace(marker, marker + "".join(line + "\n" for line in lines), 1))


def tokens(workdir, *args, check=True):
    return carehub("tokens", *args, "--data", str(workdir / "data"), "--config", str(workdir / "pipeline.conf"), check=check)


def test_tokens_are_made_listed_held_for_approval_and_revoked_from_the_host(workdir):
    declare(workdir, "integration ehr type=api baa=yes", "integration dashboard type=api baa=no")
    assert carehub("config", "check", str(workdir / "pipeline.conf")).returncode == 0

    low = tokens(workdir, "create", "--org", RIVERSIDE, "--integration", "dashboard", "--scopes", "queue:read,org:read", "--expires", "30d")
    secret, summary = low.stdout.splitlines()[:2]
    assert secret.startswith("chk_")
    assert "active, low risk, scopes org:read,queue:read" in summary
    low_id = summary.split()[1]

    high = tokens(workdir, "create", "--org", RIVERSIDE, "--integration", "ehr", "--scopes", "transcripts:read")
    high_secret, high_summary = high.stdout.splitlines()[:2]
    high_id = high_summary.split()[1]
    assert "awaiting_approval, high risk" in high_summary and "another operator approves it" in high.stdout
    # Its maker may not approve it.
    refused = tokens(workdir, "approve", "--org", RIVERSIDE, "--id", high_id, check=False)
    assert refused.returncode == 1 and "must approve it" in refused.stderr

    # Without a BAA no PHI scope, in a HIPAA organisation; an undeclared integration has no tokens.
    no_baa = tokens(workdir, "create", "--org", RIVERSIDE, "--integration", "dashboard", "--scopes", "messages:read", check=False)
    assert no_baa.returncode == 1 and "has no BAA (baa=no)" in no_baa.stderr
    unknown = tokens(workdir, "create", "--org", RIVERSIDE, "--integration", "pager", "--scopes", "org:read", check=False)
    assert unknown.returncode == 1 and "declares no 'integration pager type=api" in unknown.stderr
    bad = tokens(workdir, "create", "--org", RIVERSIDE, "--integration", "ehr", "--scopes", "org:write", check=False)
    assert bad.returncode != 0 and "--scopes" in bad.stderr

    listed = [line.split("\t") for line in tokens(workdir, "list", "--org", RIVERSIDE).stdout.splitlines()]
    assert [(row[0], row[1], row[2], row[3]) for row in listed] == [
        (high_id, "ehr", "awaiting_approval", "high"), (low_id, "dashboard", "active", "low")]
    assert tokens(workdir, "revoke", "--org", RIVERSIDE, "--id", low_id).stdout.strip() == f"revoked {low_id}"
    again = tokens(workdir, "revoke", "--org", RIVERSIDE, "--id", low_id, check=False)
    assert again.returncode == 1 and "already revoked" in again.stderr

    rows = [json.loads(line) for line in carehub("audit", "export", "--data", str(workdir / "data")).stdout.splitlines()]
    actions = [(row["action"], row["target"]) for row in rows if row["action"].startswith("token.")]
    assert actions == [("token.created", low_id), ("token.created", high_id), ("token.revoked", low_id)]
    assert all(row["actor"].startswith("cli:") for row in rows if row["action"].startswith("token."))
    assert carehub("audit", "verify", "--data", str(workdir / "data")).returncode == 0
    # The secrets are nowhere: not in the audit trail, not in the database files.
    stored = b"".join(path.read_bytes() for path in (workdir / "data").glob("carehub.sqlite*"))
    for shown in (secret, high_secret):
        assert shown.encode() not in stored and shown not in json.dumps(rows)
    with sqlite3.connect(workdir / "data" / "carehub.sqlite") as database:
        assert database.execute("SELECT count(*) FROM api_tokens").fetchone()[0] == 2


def test_an_api_integration_cannot_be_a_notification_route(workdir):
    declare(workdir, "integration ehr type=api baa=yes")
    config = workdir / "pipeline.conf"
    text = config.read_text().replace("stage fanout   notify=none\n", "stage fanout   notify=count via=ehr\n", 1)
    config.write_text(text)
    checked = carehub("config", "check", str(config), check=False)
    assert checked.returncode != 0
    assert "via names 'ehr', an API client; notifications go to webhook and email integrations" in checked.stderr
