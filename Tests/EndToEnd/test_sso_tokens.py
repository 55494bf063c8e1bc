"""The hub's checks of the ID token, against the real glewlwyd doing the real login: a small
front on loopback sits between the hub and glewlwyd (the hub's issuer is the front's address),
forwards everything to glewlwyd and rewrites what the token endpoint answers. A faithful front
(glewlwyd's claims re-signed with the front's key, the front's issuer) must let the nurse in;
a flipped signature byte, a foreign audience, an expired token and an ID token replayed from an
earlier sign-in must not, and each refusal is audited with its reason and without the token. A
new signing key published after the hub cached the key set is found by fetching the set again.
An ES256 provider (glewlwyd's second plugin) signs staff in directly."""

import asyncio
import base64
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conftest import TIMEOUT
from oidc_provider import jwt_parts, new_otp_secret
from test_sso import ORG, PROVIDER, audit_rows, provider_and_hub, sign_in, sso_hub, trade  # noqa: F401 (sso_hub: a fixture)

# SSOLogins.keyRefreshInterval: an unknown kid fetches the key set again only this long after
# the last fetch.
KEY_REFRESH_INTERVAL = 30


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def uint(number):
    return b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))


class SigningKey:
    """An RSA 2048 key of the front's own, as a JWK and as a signer of RS256 tokens."""

    def __init__(self, kid):
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self):
        numbers = self.private.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": uint(numbers.n), "e": uint(numbers.e)}

    def sign(self, claims):
        header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": self.kid}).encode())
        payload = b64url(json.dumps(claims).encode())
        signature = self.private.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{b64url(signature)}"


class TamperingFront:
    """An HTTP front for glewlwyd's RS256 plugin at {self.issuer}: discovery names the front as
    issuer, token endpoint and key set (the authorization endpoint stays glewlwyd's, where the
    browser goes); the key set is glewlwyd's plus the front's published keys; the token
    endpoint's id_token is replaced according to `mode`. Everything else is passed through."""

    MODES = ("faithful", "bad_signature", "wrong_audience", "expired", "nonce_mismatch")

    def __init__(self):
        front = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                front._answer(self, "GET")

            def do_POST(self):
                front._answer(self, "POST")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.issuer = f"{self.base}/api/oidc"
        self.upstream = None  # glewlwyd's issuer, set by attach()
        self.mode = "faithful"
        self.keys_down = False  # the key set answers 503 (the provider's keys cannot be fetched)
        self.keys = {"front-key": SigningKey("front-key")}
        self.published = ["front-key"]
        self.signing = "front-key"
        self.lock = threading.Lock()
        self.requests = []        # (method, path below the issuer) the hub sent
        self.key_sets = []        # (time, kids) of each key set served
        self.from_glewlwyd = []   # glewlwyd's own ID tokens
        self.handed_out = []      # the ID tokens the hub received
        self.errors = []          # anything that went wrong inside the front

    def attach(self, idp):
        """Forwards to `idp`'s RS256 plugin; returns the issuer the hub is to be given."""
        self.upstream = idp.issuer()
        return self.issuer

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def rotate(self, kid):
        """Publishes only a new key of the front's and signs with it from now on."""
        with self.lock:
            self.keys[kid] = SigningKey(kid)
            self.published = [kid]
            self.signing = kid

    # -- the three documents the hub reads --------------------------------------------------

    def discovery(self):
        document = json.loads(self._upstream("GET", "/.well-known/openid-configuration")[1])
        # glewlwyd's own endpoints (some written with a double slash, http://127.0.0.1:P//api/oidc/auth).
        glewlwyd = self.upstream.removesuffix("/api/oidc")
        assert document["issuer"] == self.upstream and document["token_endpoint"].startswith(glewlwyd), document
        assert document["authorization_endpoint"].startswith(glewlwyd), document
        document.update(issuer=self.issuer, token_endpoint=f"{self.issuer}/token", jwks_uri=f"{self.issuer}/jwks")
        return document

    def key_set(self):
        keys = json.loads(self._upstream("GET", "/jwks")[1])["keys"]
        with self.lock:
            own = [self.keys[kid].jwk() for kid in self.published]
            self.key_sets.append((time.time(), [key.get("kid") for key in keys + own]))
        return {"keys": keys + own}

    def token(self, handler, body):
        headers = {name: handler.headers[name] for name in ("Authorization", "Content-Type", "Accept") if handler.headers[name]}
        status, raw = self._upstream("POST", "/token", body, headers)
        answer = json.loads(raw)
        if status == 200:
            original = answer["id_token"]
            with self.lock:
                self.from_glewlwyd.append(original)
                answer["id_token"] = self.tampered(original)
                self.handed_out.append(answer["id_token"])
        return status, answer

    def tampered(self, original):
        assert self.mode in self.MODES, self.mode
        header, claims = jwt_parts(original)
        assert header["alg"] == "RS256" and claims["iss"] == self.upstream, (header, claims)
        if self.mode == "nonce_mismatch":
            # The ID token the hub accepted at an earlier sign-in, for this new one.
            assert self.handed_out, "nothing to replay: no earlier sign-in went through the front"
            replayed = self.handed_out[0]
            assert jwt_parts(replayed)[1]["nonce"] != claims["nonce"]
            return replayed
        claims["iss"] = self.issuer
        if self.mode == "wrong_audience":
            claims["aud"] = "another-clinic-app"
        elif self.mode == "expired":
            now = int(time.time())
            claims.update(iat=now - 7200, exp=now - 3600)
        token = self.keys[self.signing].sign(claims)
        if self.mode == "bad_signature":
            head, payload, signature = token.split(".")
            flipped = bytearray(b64url_decode(signature))
            flipped[len(flipped) // 2] ^= 0x01
            token = f"{head}.{payload}.{b64url(bytes(flipped))}"
        return token

    # -- plumbing ---------------------------------------------------------------------------

    def _upstream(self, method, path, body=None, headers=None):
        request = urllib.request.Request(self.upstream + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def _answer(self, handler, method):
        path = handler.path
        with self.lock:
            self.requests.append((method, path.removeprefix("/api/oidc")))
        try:
            assert path.startswith("/api/oidc/"), path
            body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0)) if method == "POST" else None
            rest = path.removeprefix("/api/oidc")
            if method == "GET" and rest == "/.well-known/openid-configuration":
                status, payload = 200, json.dumps(self.discovery()).encode()
            elif method == "GET" and rest == "/jwks" and self.keys_down:
                status, payload = 503, b'{"error":"unavailable"}'
            elif method == "GET" and rest == "/jwks":
                status, payload = 200, json.dumps(self.key_set()).encode()
            elif method == "POST" and rest == "/token":
                status, answer = self.token(handler, body)
                payload = json.dumps(answer).encode()
            else:
                status, payload = self._upstream(method, rest, body, {"Content-Type": handler.headers.get("Content-Type", "")})
        except Exception as error:  # noqa: BLE001 - recorded, and each test asserts there is none
            with self.lock:
                self.errors.append(f"{method} {path}: {error!r}")
            status, payload = 502, b'{"error":"front_failed"}'
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Cache-Control", "no-store")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


@pytest.fixture
def front_hub(workdir):
    """The hub, glewlwyd and the front between them (the hub's issuer is the front's)."""
    front = TamperingFront().start()
    try:
        with provider_and_hub(workdir, issuer=front.attach) as (hub, idp):
            yield hub, idp, front
            assert not front.errors, front.errors
    finally:
        front.stop()


def new_nurse(idp, user):
    """A glewlwyd account with password and TOTP (its own, for glewlwyd's one code per 30 s)."""
    idp.add_user(user, f"{user}-idp-pass-1", otp_secret=new_otp_secret())
    return user


def signed_in(hub, idp, user):
    """The console address's fragment after the whole sign-in with password and TOTP."""
    return sign_in(hub, idp, user, f"{user}-idp-pass-1", otp=True)


def assert_session(hub, returned, user):
    """The fragment carries a ticket that the WebSocket trades for the user's session."""
    assert returned["org"] == ORG and "sso_error" not in returned and len(returned.get("sso", "")) >= 40, returned

    async def scenario():
        client, reply = await trade(hub, returned["sso"])
        await client.close()
        return reply

    reply = asyncio.run(scenario())
    assert reply["type"] == "session" and reply["user"] == user, reply


def failures(hub):
    return [row for row in audit_rows(hub) if row["action"] == "login.failure"]


def assert_refused(hub, returned, reason, issuer, before):
    """No ticket, the person sees an error, one new login.failure with the reason, no token written."""
    assert "sso" not in returned and returned.get("sso_error"), returned
    assert "could not be verified" in returned["sso_error"], returned
    new = failures(hub)[len(before):]
    assert len(new) == 1, new
    detail = new[0]["detail"]
    assert detail.startswith(f"reason={reason} ") and f"issuer={issuer}" in detail and new[0]["actor"] == f"sso:{PROVIDER}", new[0]
    assert_no_token_written(hub)


def assert_no_token_written(hub):
    written = json.dumps(audit_rows(hub)) + hub.log_text()
    assert "eyJ" not in written  # no JWT (ID token, access token) in the audit or the log


def successes(hub, user):
    return [row for row in audit_rows(hub) if row["action"] == "login.success" and row["actor"] == user and "via=sso" in row["detail"]]


@pytest.mark.parametrize("mode", ["bad_signature", "wrong_audience", "expired", "nonce_mismatch"])
def test_a_tampered_id_token_is_refused(front_hub, mode):
    hub, idp, front = front_hub
    # The control: glewlwyd's claims re-signed by the front, under the front's issuer, get in.
    returned = signed_in(hub, idp, new_nurse(idp, "nurse.kim"))
    assert_session(hub, returned, "nurse.kim")
    assert {("GET", "/.well-known/openid-configuration"), ("POST", "/token"), ("GET", "/jwks")} <= set(front.requests)
    header, claims = jwt_parts(front.handed_out[0])
    assert header["kid"] == "front-key" and claims["iss"] == front.issuer and claims["aud"] in ("carehub", ["carehub"])
    assert len(successes(hub, "nurse.kim")) == 1

    front.mode = mode
    before = failures(hub)
    returned = signed_in(hub, idp, new_nurse(idp, "nurse.ann"))
    assert len(front.handed_out) == 2 and front.handed_out[1] != front.from_glewlwyd[1]
    assert_refused(hub, returned, mode, front.issuer, before)
    assert not successes(hub, "nurse.ann")
    tampered = jwt_parts(front.handed_out[1])[1]
    if mode == "wrong_audience":
        assert "carehub" not in (tampered["aud"] if isinstance(tampered["aud"], list) else [tampered["aud"]])
    elif mode == "expired":
        assert tampered["exp"] < time.time() - 600
    elif mode == "nonce_mismatch":
        assert front.handed_out[1] == front.handed_out[0]
        assert tampered["nonce"] != jwt_parts(front.from_glewlwyd[1])[1]["nonce"]


def test_keys_that_cannot_be_fetched_refuse_the_sign_in_on_the_record(front_hub):
    hub, idp, front = front_hub
    front.keys_down = True
    before = failures(hub)
    returned = signed_in(hub, idp, new_nurse(idp, "nurse.lee"))
    assert "sso" not in returned and "could not be reached" in returned.get("sso_error", ""), returned
    new = failures(hub)[len(before):]
    assert len(new) == 1 and new[0]["detail"].startswith("reason=jwks ") and new[0]["actor"] == f"sso:{PROVIDER}", new
    assert not successes(hub, "nurse.lee")


def test_a_new_signing_key_is_fetched_when_a_token_names_an_unknown_kid(front_hub):
    hub, idp, front = front_hub
    # The hub fetches and caches the key set with the front's first key.
    returned = signed_in(hub, idp, new_nurse(idp, "nurse.kim"))
    assert_session(hub, returned, "nurse.kim")
    assert len(front.key_sets) == 1 and "front-key" in front.key_sets[0][1], front.key_sets

    # The provider rotates: the old key leaves the set, tokens carry the new kid.
    front.rotate("front-key-2")
    # Right after the fetch the hub does not fetch again for an unknown kid: refused.
    before = failures(hub)
    returned = signed_in(hub, idp, new_nurse(idp, "nurse.ann"))
    assert jwt_parts(front.handed_out[1])[0]["kid"] == "front-key-2"
    assert_refused(hub, returned, "unknown_key", front.issuer, before)
    assert len(front.key_sets) == 1, front.key_sets

    # nurse.kim signs in again once glewlwyd takes her next code (31 s after the last), which is
    # also past the hub's refresh interval since its fetch; this makes sure of the latter.
    time.sleep(max(0.0, front.key_sets[0][0] + KEY_REFRESH_INTERVAL + 0.5 - time.time()))
    returned = signed_in(hub, idp, "nurse.kim")
    assert front.key_sets[-1][0] - front.key_sets[0][0] >= KEY_REFRESH_INTERVAL
    assert jwt_parts(front.handed_out[2])[0]["kid"] == "front-key-2"
    assert_session(hub, returned, "nurse.kim")
    assert len(front.key_sets) == 2 and "front-key-2" in front.key_sets[1][1] and "front-key" not in front.key_sets[1][1]
    assert len(successes(hub, "nurse.kim")) == 2
    assert_no_token_written(hub)


@pytest.mark.parametrize("sso_hub", [{"issuer": lambda idp: idp.issuer("oidc-es256")}], ids=["es256"], indirect=True)
def test_an_es256_provider_signs_a_nurse_in(sso_hub):
    hub, idp = sso_hub
    issuer = idp.issuer("oidc-es256")
    # The plugin's only keys are P-256 EC keys: what it signs is ES256 (its discovery document
    # lists ES384 and ES512 as well, which such a key cannot make).
    with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=TIMEOUT) as answer:
        assert "ES256" in json.load(answer)["id_token_signing_alg_values_supported"]
    with urllib.request.urlopen(f"{issuer}/jwks", timeout=TIMEOUT) as answer:
        keys = json.load(answer)["keys"]
    assert keys and all(key["kty"] == "EC" and key["crv"] == "P-256" and key.get("alg", "ES256") == "ES256" for key in keys), keys

    returned = signed_in(hub, idp, new_nurse(idp, "nurse.kim"))
    assert_session(hub, returned, "nurse.kim")
    login = successes(hub, "nurse.kim")
    assert len(login) == 1 and f"issuer={issuer} " in login[0]["detail"] + " " and "second_factor=provider" in login[0]["detail"], login
    assert not failures(hub)
    assert_no_token_written(hub)
