"""A small client of the integration API for the end-to-end tests, and the tokens it needs:
made with `carehub tokens create` on the hub's host, approved by an admin over the admin API."""

import http.client
import json
import signal

from conftest import carehub, staff

RIVERSIDE = "riverside-clinic"
LOTUS = "lotus-wellness"

# Every scope, by risk, as `carehub tokens` and the admin console list them.
LOW = ["org:read", "queue:read", "users:read"]
MEDIUM = ["conversations:read", "conversations:write", "audit:read", "webhooks:write"]
HIGH = ["users:write", "messages:read", "transcripts:read", "attachments:read", "forms:read", "conversations:open"]


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def code(self):
        """A problem's stable code (RFC 9457 body), or None for a success."""
        if self.headers.get("content-type") != "application/problem+json":
            return None
        return self.json["code"]

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def call(hub, method, path, token=None, body=None, headers=None):
    """One API call on its own connection; `body` (a dict) is sent as JSON."""
    connection = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=20)
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    elif method in ("POST", "PUT", "PATCH"):
        data = b""
    connection.request(method, path, body=data, headers=sent)
    response = connection.getresponse()
    answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    connection.close()
    return answer


def org_path(org, rest=""):
    return f"/api/v1/orgs/{org}{rest}"


def declare(workdir, org_name_line, *lines):
    """Adds lines to the section whose `name =` line is `org_name_line`."""
    config = workdir / "pipeline.conf"
    text = config.read_text()
    assert org_name_line in text
    config.write_text(text.replace(org_name_line, org_name_line + "".join(line + "\n" for line in lines), 1))


RIVERSIDE_NAME = "name  = Riverside Family Clinic\n"
LOTUS_NAME = "name  = Lotus Wellness Studio\n"


def set_auth(workdir, org_auth_line, extra):
    """Appends parameters to one `stage auth` line of pipeline.conf."""
    config = workdir / "pipeline.conf"
    text = config.read_text()
    assert org_auth_line in text
    config.write_text(text.replace(org_auth_line, org_auth_line + " " + extra, 1))


def make_token(workdir, org, integration, scopes, check=True):
    """`carehub tokens create`; returns (id, secret)."""
    made = carehub("tokens", "create", "--org", org, "--integration", integration, "--scopes", ",".join(scopes),
                   "--data", str(workdir / "data"), "--config", str(workdir / "pipeline.conf"), check=check)
    secret, summary = made.stdout.splitlines()[:2]
    return summary.split()[1], secret


async def approve(hub, *token_ids, org=RIVERSIDE, user="dr.admin"):
    """An admin other than the tokens' maker (the host's operator) approves them, in one login
    (a second login would wait for the authenticator's next code)."""
    client, _ = await staff(hub, org, user)
    for token_id in token_ids:
        reply = await client.request({"type": "admin", "op": "tokens.approve", "id": "a", "token": token_id}, "admin")
        assert reply["type"] == "admin" and reply["result"]["token"]["state"] == "active", reply
    await client.close()


def reload(hub):
    """SIGHUP, and the hub's word that the new configuration is in force."""
    hub.signal(signal.SIGHUP)
    hub.expect_line("configuration reloaded")
