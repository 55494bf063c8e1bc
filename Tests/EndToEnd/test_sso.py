"""Single sign-on for staff against a real OpenID Connect provider (glewlwyd, started by the test
with its own configuration, keys and users): the code flow with PKCE through the hub's /sso
pages, the ticket traded on the WebSocket for a session, the HIPAA floor (a second factor from
the provider, or CareHub's own code), accounts made on first login with their role from a group,
disabled accounts, refused and replayed sign-ins, back-channel logout ending a live console, and
the audit trail with issuer and subject but never a token."""

import asyncio
import contextlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request

import time

import pytest

from conftest import AUTHENTICATOR, TIMEOUT, Client, Hub, carehub, staff, totp
from oidc_provider import Glewlwyd, free_port, new_otp_secret

ORG = "riverside-clinic"
PROVIDER = "clinic-idp"


def configure(workdir, idp, scopes="openid,mfa", extra="accounts=create claim_role=groups admin_group=carehub-admins",
              issuer=None):
    """Declares the provider in Riverside's section (HIPAA) and names it in its auth stage; the
    issuer is glewlwyd's RS256 plugin unless given."""
    secret = workdir / "sso-secret"
    secret.write_text(idp.client_secret + "\n")
    secret.chmod(0o600)
    config = workdir / "pipeline.conf"
    text = config.read_text()
    marker = "name  = Riverside Family Clinic\n"
    line = f"sso {PROVIDER} issuer={issuer or idp.issuer()} client_id={idp.client_id} client_secret_file={secret} scopes={scopes} {extra}\n"
    text = text.replace(marker, marker + line, 1)
    text = re.sub(r"(stage auth +visitors=on twofactor=required[^\n]*)", r"\1 sso=" + PROVIDER, text, count=1)
    config.write_text(text)
    return config


@contextlib.contextmanager
def provider_and_hub(workdir, issuer=None, hub_args=(), **options):
    """A glewlwyd on this machine and a hub whose HIPAA organisation signs staff in with it;
    `issuer(idp)`, when given, names the issuer the hub is configured with (options as for
    configure; `hub_args` for `carehub serve`)."""
    idp = Glewlwyd(workdir, port=free_port())
    config = configure(workdir, idp, issuer=issuer(idp) if issuer else None, **options)
    hub = Hub(workdir, config)
    hub.extra_args = list(hub_args)
    hub.start()
    idp.redirect_uris = [f"http://127.0.0.1:{hub.port}/sso/{ORG}/callback"]
    idp.backchannel_logout_uri = f"http://127.0.0.1:{hub.port}/sso/{ORG}/backchannel-logout"
    idp.start()
    try:
        yield hub, idp
    finally:
        idp.stop()
        hub.stop()


@pytest.fixture
def sso_hub(workdir, request):
    """A hub whose HIPAA organisation signs staff in with a glewlwyd on this machine."""
    with provider_and_hub(workdir, **getattr(request, "param", {})) as running:
        yield running


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get(url):
    """(status, headers, body) of a GET that follows no redirect."""
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=TIMEOUT) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def fragment(location):
    return {name: values[0] for name, values in urllib.parse.parse_qs(urllib.parse.urlsplit(location).fragment).items()}


def start(hub, page="staff"):
    """The provider's authorization URL that the hub's start page redirects to."""
    status, headers, _ = get(f"http://127.0.0.1:{hub.port}/sso/{ORG}/start?page={page}")
    assert status == 302, status
    location = headers["Location"]
    assert location.startswith(f"http://127.0.0.1:") and re.search(r"/api/oidc[\w-]*/auth\?", location), location
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0] and query["nonce"][0] and query["state"][0]
    assert query["response_type"] == ["code"] and query["redirect_uri"] == [f"http://127.0.0.1:{hub.port}/sso/{ORG}/callback"]
    return location


def callback(location):
    """Follows the provider's redirect back to the hub and returns where the hub sends the browser."""
    status, headers, _ = get(location)
    assert status == 302, status
    assert headers["Cache-Control"] == "no-store"
    return headers["Location"]


def sign_in(hub, idp, user, password, otp=None, page="staff"):
    """The whole browser side without a browser: returns the console address's fragment."""
    back = idp.login(start(hub, page), user, password, otp=otp)
    destination = callback(back)
    assert destination.startswith(f"/{page}.html#"), destination
    return fragment(destination)


async def trade(hub, ticket, code=None, org=ORG):
    client = await Client.connect(hub)
    frame = {"type": "sso", "org": org, "ticket": ticket, "id": "login"}
    if code:
        frame["totp"] = code
    return client, await client.request(frame, ("session", "enroll"))


def audit_rows(hub):
    return [json.loads(line) for line in carehub("audit", "export", "--data", str(hub.data)).stdout.splitlines()]


def users(hub):
    """`carehub user list` as {name: (role, the whole line)}."""
    listed = carehub("user", "list", "--org", ORG, "--data", str(hub.data)).stdout.splitlines()
    return {line.split("\t")[0]: (line.split("\t")[1], line) for line in listed}


def test_a_nurse_signs_in_with_the_provider_and_its_second_factor(sso_hub):
    hub, idp = sso_hub
    status, _, body = get(f"http://127.0.0.1:{hub.port}/sso/{ORG}")
    assert status == 200 and json.loads(body) == {"org": ORG, "provider": PROVIDER}
    assert get(f"http://127.0.0.1:{hub.port}/sso/lotus-wellness")[0] == 404

    idp.add_user("nurse.kim", "kim-idp-pass-1", name="Kim Park", otp_secret=new_otp_secret())
    idp.add_user("dr.lee", "lee-idp-pass-1", groups=["carehub-admins"], otp_secret=new_otp_secret())

    async def scenario():
        tickets = {}
        for user, password, role in (("nurse.kim", "kim-idp-pass-1", "staff"), ("dr.lee", "lee-idp-pass-1", "admin")):
            returned = sign_in(hub, idp, user, password, otp=True, page="admin" if role == "admin" else "staff")
            assert returned["org"] == ORG and len(returned.get("sso", "")) >= 40, returned
            client, reply = await trade(hub, returned["sso"])
            # The provider's amr says otp: no CareHub code needed, a two-factor session.
            assert reply["type"] == "session" and reply["user"] == user and reply["role"] == role, reply
            tickets[user] = returned["sso"]
            # The admin API needs a second factor; the provider's counts.
            if role == "admin":
                answer = await client.request({"type": "admin", "op": "users.list", "id": "a"}, "admin")
                assert answer["type"] == "admin", answer
            await client.close()
        # A ticket works once.
        client, reply = await trade(hub, tickets["nurse.kim"])
        assert reply["type"] == "error" and reply["code"] == "auth_failed", reply
        await client.close()
        return tickets

    tickets = asyncio.run(scenario())
    accounts = users(hub)
    assert accounts["nurse.kim"][0] == "staff" and accounts["dr.lee"][0] == "admin"
    assert "Kim Park" in accounts["nurse.kim"][1]

    rows = audit_rows(hub)
    created = [row for row in rows if row["action"] == "user.created" and row["actor"] == f"sso:{PROVIDER}"]
    assert {row["target"] for row in created} == {"nurse.kim", "dr.lee"}
    logins = [row for row in rows if row["action"] == "login.success" and "via=sso" in row["detail"]]
    assert len(logins) == 2
    for row in logins:
        assert f"issuer={idp.issuer()}" in row["detail"] and "subject=" in row["detail"] and "second_factor=provider" in row["detail"]
    assert any(row["action"] == "login.failure" and "reason=sso_ticket" in row["detail"] for row in rows)
    # No token, code or ticket anywhere the hub writes.
    written = json.dumps(rows) + hub.log_text()
    for ticket in tickets.values():
        assert ticket not in written
    assert "eyJ" not in written  # no JWT (ID token, logout token) in the audit or the log


@pytest.mark.parametrize("sso_hub", [{"scopes": "openid"}], indirect=True)
def test_hipaa_org_asks_for_carehubs_own_code_when_the_provider_shows_one_factor(sso_hub):
    hub, idp = sso_hub
    # nurse.joy has a CareHub account with an authenticator (enrolled at a password login).
    asyncio.run(_enrol(hub))
    idp.add_user("nurse.joy", "joy-idp-pass-1")
    idp.add_user("new.hire", "hire-idp-pass-1")

    async def scenario():
        ticket = sign_in(hub, idp, "nurse.joy", "joy-idp-pass-1")["sso"]
        client, reply = await trade(hub, ticket)
        assert reply["type"] == "error" and reply["code"] == "code_required", reply
        wrong = await client.request({"type": "sso", "org": ORG, "ticket": ticket, "totp": "000000", "id": "login"}, "session")
        assert wrong["type"] == "error" and wrong["code"] == "auth_failed", wrong
        key = (hub.data, ORG, "nurse.joy")
        good = await client.request({"type": "sso", "org": ORG, "ticket": ticket, "totp": AUTHENTICATOR.code(key), "id": "login"}, "session")
        assert good["type"] == "session" and good["user"] == "nurse.joy", good
        await client.close()

        # Someone new, with one factor at the provider: an account, then CareHub's enrolment.
        ticket = sign_in(hub, idp, "new.hire", "hire-idp-pass-1")["sso"]
        client, reply = await trade(hub, ticket)
        assert reply["type"] == "enroll", reply
        code = totp(reply["secret"], int(time.time()) // 30)
        done = await client.request({"type": "sso", "org": ORG, "ticket": ticket, "totp": code, "id": "login"}, "session")
        assert done["type"] == "session" and done["recoveryCodes"], done
        await client.close()

    asyncio.run(scenario())
    rows = audit_rows(hub)
    joy = [row for row in rows if row["action"] == "login.success" and row["actor"] == "nurse.joy" and "via=sso" in row["detail"]]
    assert len(joy) == 1 and "factors=2" in joy[0]["detail"] and "second_factor=provider" not in joy[0]["detail"]
    assert any(row["action"] == "login.failure" and row["actor"] == "nurse.joy" and "reason=code " in row["detail"] + " " for row in rows)


async def _enrol(hub):
    client, _ = await staff(hub)
    await client.close()


def test_a_disabled_account_is_refused_even_when_the_provider_says_yes(sso_hub):
    hub, idp = sso_hub
    carehub("user", "disable", "--org", ORG, "--user", "nurse.joy", "--data", str(hub.data))
    idp.add_user("nurse.joy", "joy-idp-pass-1", otp_secret=new_otp_secret())

    async def scenario():
        ticket = sign_in(hub, idp, "nurse.joy", "joy-idp-pass-1", otp=True)["sso"]
        client, reply = await trade(hub, ticket)
        assert reply["type"] == "error" and reply["code"] == "auth_failed", reply
        await client.close()

    asyncio.run(scenario())
    rows = audit_rows(hub)
    refused = [row for row in rows if row["action"] == "login.failure" and row["actor"] == "nurse.joy"]
    assert refused and "reason=disabled" in refused[-1]["detail"] and "via=sso" in refused[-1]["detail"]
    assert f"issuer={idp.issuer()}" in refused[-1]["detail"] and "subject=" in refused[-1]["detail"]


def test_replayed_state_foreign_tickets_and_provider_errors_are_refused(sso_hub):
    hub, idp = sso_hub
    idp.add_user("nurse.kim", "kim-idp-pass-1", otp_secret=new_otp_secret())
    back = idp.login(start(hub), "nurse.kim", "kim-idp-pass-1", otp=True)
    first = fragment(callback(back))
    assert "sso" in first
    # The same answer from the provider again (the same state and code): refused.
    again = fragment(callback(back))
    assert "sso" not in again and "already used" in again["sso_error"]
    # A state the hub never made.
    forged = re.sub(r"state=[^&]+", "state=forged", back)
    assert "sso_error" in fragment(callback(forged))
    # The person cancelled at the provider.
    cancelled = fragment(callback(f"http://127.0.0.1:{hub.port}/sso/{ORG}/callback?error=access_denied&state=x"))
    assert "access_denied" in cancelled["sso_error"]

    async def scenario():
        # A ticket is good for its own organisation only, and a made-up one for nothing.
        client, reply = await trade(hub, first["sso"], org="lotus-wellness")
        assert reply["type"] == "error" and reply["code"] in ("auth_failed", "forbidden"), reply
        await client.close()
        client, reply = await trade(hub, "x" * 43)
        assert reply["type"] == "error" and reply["code"] == "auth_failed", reply
        await client.close()
        client, reply = await trade(hub, first["sso"])
        assert reply["type"] == "session", reply
        await client.close()

    asyncio.run(scenario())
    reasons = [row["detail"] for row in audit_rows(hub) if row["action"] == "login.failure"]
    assert any("reason=state" in detail for detail in reasons)
    assert any("reason=provider_error error=access_denied" in detail for detail in reasons)


def test_back_channel_logout_ends_a_live_console_session(sso_hub):
    hub, idp = sso_hub
    idp.add_user("nurse.kim", "kim-idp-pass-1", otp_secret=new_otp_secret())

    async def scenario():
        ticket = sign_in(hub, idp, "nurse.kim", "kim-idp-pass-1", otp=True)["sso"]
        client, reply = await trade(hub, ticket)
        assert reply["type"] == "session", reply
        # A colleague logged in with a password stays.
        colleague, _ = await staff(hub)
        login = [row for row in audit_rows(hub) if row["action"] == "login.success" and row["actor"] == "nurse.kim"][-1]
        sid = re.search(r"sid=(\S+)", login["detail"]).group(1)
        idp.logout(sid=sid)
        ended = await client.recv("session_expired")
        assert ended["reason"] == "revoked"
        rooms = await colleague.request({"type": "rooms", "id": "r"}, "rooms")
        assert rooms["type"] == "rooms"
        await client.close()
        await colleague.close()

    asyncio.run(scenario())
    rows = audit_rows(hub)
    assert any(row["action"] == "sso.logout" and "sessions=1" in row["detail"] for row in rows)
    assert any(row["action"] == "session.revoked" and row["target"] == "nurse.kim" and "reason=sso_logout" in row["detail"] for row in rows)
    # A forged logout token is refused with the OIDC error answer.
    request = urllib.request.Request(
        f"http://127.0.0.1:{hub.port}/sso/{ORG}/backchannel-logout", data=b"logout_token=eyJhbGciOiJub25lIn0.e30.",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=TIMEOUT)
    assert refused.value.code == 400 and json.loads(refused.value.read())["error"] == "invalid_request"


def test_the_terminal_console_signs_in_with_a_code_entered_in_a_browser(sso_hub):
    from test_console import Console
    hub, idp = sso_hub
    idp.add_user("nurse.kim", "kim-idp-pass-1", otp_secret=new_otp_secret())
    console = Console(hub, ORG)
    where = console.expect("To sign in, open ")
    assert f"127.0.0.1:{idp.port}" in where and "/device" in where, where
    user_code = console.expect("and enter the code ").split("enter the code ")[1].strip().rstrip(".")
    console.expect("Waiting for you to finish")
    idp.complete_device(user_code, "nurse.kim", "kim-idp-pass-1", otp=True, scope="openid mfa")
    console.expect(f"Logged in to {ORG} as nurse.kim.")
    console.type("/rooms")
    console.type("/quit")
    assert console.proc.wait(timeout=TIMEOUT) == 0, console.finished_stderr()
    logins = [row for row in audit_rows(hub) if row["action"] == "login.success" and row["actor"] == "nurse.kim"]
    assert len(logins) == 1 and "via=sso" in logins[0]["detail"] and "second_factor=provider" in logins[0]["detail"]


@pytest.mark.parametrize("sso_hub", [{"hub_args": ("--trusted-proxy", "127.0.0.1/32")}], indirect=True)
def test_a_hipaa_organisation_signs_in_only_over_tls(sso_hub):
    hub, idp = sso_hub
    base = f"http://127.0.0.1:{hub.port}/sso/{ORG}"

    def through_proxy(path, proto):
        request = urllib.request.Request(base + path, headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": proto})
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=TIMEOUT) as answer:
                return answer.status, answer.headers["Location"]
        except urllib.error.HTTPError as error:
            return error.code, error.headers["Location"]

    # A patient's clinic reached over plain http through the proxy: no sign-in starts, and no
    # ticket is handed out on the way back.
    status, location = through_proxy("/start", "http")
    assert status == 302 and "https" in fragment(location)["sso_error"] and "sso=" not in location, location
    status, location = through_proxy("/callback?code=x&state=y", "http")
    assert status == 302 and "sso_error" in fragment(location) and "sso=" not in location, location
    # Over TLS at the proxy the sign-in goes to the provider.
    status, location = through_proxy("/start", "https")
    assert status == 302 and location.startswith(idp.issuer()), location
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["redirect_uri"] == [f"https://127.0.0.1:{hub.port}/sso/{ORG}/callback"]


def test_sign_ins_a_stranger_may_start_are_limited(sso_hub):
    hub, idp = sso_hub
    # Each start keeps a pending login; one address gets 20 a minute, then a clear refusal.
    for _ in range(20):
        start(hub)
    status, headers, _ = get(f"http://127.0.0.1:{hub.port}/sso/{ORG}/start")
    assert status == 302 and "Too many sign-ins" in fragment(headers["Location"])["sso_error"]
