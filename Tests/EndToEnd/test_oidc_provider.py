"""The OpenID Connect provider harness (oidc_provider.py) against the real glewlwyd: discovery,
keys, the code flow with PKCE, amr with and without a second factor, the device grant,
back-channel logout, and a real browser login at glewlwyd's own login page (headless Chromium).
Needs no carehub binary."""

import base64
import http.server
import json
import queue
import secrets
import threading
import urllib.parse
import urllib.request

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from oidc_provider import Glewlwyd, free_port, jwt_parts, new_otp_secret, pkce_pair

TIMEOUT = 20


class LogoutListener:
    """A loopback HTTP server that queues the form bodies POSTed to it (back-channel logout)."""

    def __init__(self):
        self.posts = queue.Queue()
        posts = self.posts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                posts.put((self.path, self.headers.get("Content-Type"), urllib.parse.parse_qs(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sso/backchannel-logout"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def logout_listener():
    listener = LogoutListener()
    yield listener
    listener.close()


class CallbackListener:
    """A loopback HTTP server standing in for the client's redirect URI: it queues the path and
    query of each GET and answers with a small page (the browser's own /favicon.ico requests are
    answered 404 and not queued)."""

    def __init__(self):
        self.gets = queue.Queue()
        gets = self.gets

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/favicon.ico":
                    self.send_error(404)
                    return
                gets.put((url.path, urllib.parse.parse_qs(url.query)))
                body = b"<!doctype html><title>Signed in</title><p id='signed-in'>Signed in</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sso/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


REDIRECT = f"http://127.0.0.1:{free_port()}/sso/callback"


@pytest.fixture
def idp(tmp_path, logout_listener):
    with Glewlwyd(tmp_path, redirect_uris=[REDIRECT], backchannel_logout_uri=logout_listener.url) as running:
        yield running


@pytest.fixture
def callback_listener():
    listener = CallbackListener()
    yield listener
    listener.close()


@pytest.fixture
def web_idp(tmp_path, callback_listener):
    """A provider whose client redirects to the callback listener."""
    with Glewlwyd(tmp_path, redirect_uris=[callback_listener.url], es256=False) as running:
        yield running


@pytest.fixture
def chromium():
    from test_browser import browser  # fails (not skips) without Chromium, its driver or Selenium
    driver = browser()
    yield driver
    driver.quit()


def get_json(url):
    return json.loads(urllib.request.urlopen(url, timeout=TIMEOUT).read())


def b64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify(token, jwks):
    """Checks a JWS's signature against the provider's JWKS; returns its claims."""
    header, claims = jwt_parts(token)
    signed, signature = token.rsplit(".", 1)[0].encode(), b64(token.rsplit(".", 1)[1])
    keys = [k for k in jwks["keys"] if k.get("kid") == header.get("kid")] if header.get("kid") else jwks["keys"]
    assert keys, (header, jwks)
    key = keys[0]
    if header["alg"] == "RS256":
        assert key["kty"] == "RSA"
        public = rsa.RSAPublicNumbers(int.from_bytes(b64(key["e"]), "big"), int.from_bytes(b64(key["n"]), "big")).public_key()
        public.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    elif header["alg"] == "ES256":
        assert key["kty"] == "EC" and key["crv"] == "P-256"
        public = ec.EllipticCurvePublicNumbers(int.from_bytes(b64(key["x"]), "big"), int.from_bytes(b64(key["y"]), "big"),
                                               ec.SECP256R1()).public_key()
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        public.verify(der, signed, ec.ECDSA(hashes.SHA256()))
    else:
        raise AssertionError(f"unexpected alg {header['alg']}")
    return claims


def code_flow(idp, username, password, otp=None, scope="openid", plugin="oidc", auth="basic"):
    verifier, challenge = pkce_pair()
    url = idp.authorize_url(REDIRECT, scope=scope, state="st-1", nonce="n-1", code_challenge=challenge, plugin=plugin)
    location = idp.login(url, username, password, otp=otp)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["state"] == ["st-1"], location
    tokens = idp.exchange_code(query["code"][0], REDIRECT, code_verifier=verifier, auth=auth, plugin=plugin)
    discovery = get_json(f"{idp.issuer(plugin)}/.well-known/openid-configuration")
    claims = verify(tokens["id_token"], get_json(discovery["jwks_uri"]))
    assert claims["iss"] == idp.issuer(plugin) and claims["aud"] == idp.client_id and claims["nonce"] == "n-1"
    return tokens, claims


def test_discovery_and_keys(idp):
    for plugin, alg, kty in (("oidc", "RS256", "RSA"), ("oidc-es256", "ES256", "EC")):
        discovery = get_json(f"{idp.issuer(plugin)}/.well-known/openid-configuration")
        assert discovery["issuer"] == idp.issuer(plugin) == f"http://127.0.0.1:{idp.port}/api/{plugin}"
        assert alg in discovery["id_token_signing_alg_values_supported"]
        assert "S256" in discovery["code_challenge_methods_supported"]
        assert {"client_secret_basic", "client_secret_post"} <= set(discovery["token_endpoint_auth_methods_supported"])
        assert discovery["device_authorization_endpoint"].endswith(f"/api/{plugin}/device_authorization")
        keys = get_json(discovery["jwks_uri"])["keys"]
        assert [(k["kty"], k.get("alg")) for k in keys] == [(kty, alg)], keys


def test_code_flow_amr_password_versus_otp(idp):
    secret = new_otp_secret()
    idp.add_user("nurse.joy", "joy-pass-1", email="joy@example.org", groups=["staff", "nurses"], otp_secret=secret)
    idp.add_user("front.desk", "desk-pass-1", groups=["staff"])

    _, password_only = code_flow(idp, "front.desk", "desk-pass-1")
    assert password_only["amr"] == ["password"], password_only
    assert "acr" not in password_only
    assert password_only["sub"] and password_only["groups"] == ["staff"]

    _, with_otp = code_flow(idp, "nurse.joy", "joy-pass-1", otp=True, scope="openid mfa", auth="post")
    assert with_otp["amr"] == ["password", "otp"], with_otp
    assert "acr" not in with_otp
    assert with_otp["email"] == "joy@example.org" and with_otp["groups"] == ["staff", "nurses"]

    with pytest.raises(AssertionError):  # scope mfa without the second factor: back to the login page
        code_flow(idp, "nurse.joy", "joy-pass-1", scope="openid mfa")

    _, es256 = code_flow(idp, "front.desk", "desk-pass-1", plugin="oidc-es256")
    assert es256["iss"] == idp.issuer("oidc-es256")


def test_device_grant(idp):
    idp.add_user("dr.admin", "admin-pass-1")
    started = idp.device_authorization()
    status, pending = idp.token({"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": started["device_code"]})
    assert status == 400 and pending["error"] == "authorization_pending", pending
    idp.complete_device(started["user_code"], "dr.admin", "admin-pass-1")
    status, tokens = idp.token({"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": started["device_code"]})
    assert status == 200, tokens
    claims = verify(tokens["id_token"], get_json(f"{idp.issuer()}/jwks"))
    assert claims["amr"] == ["password"] and claims["aud"] == idp.client_id


def test_token_endpoint_client_authentication(idp):
    form = {"grant_type": "authorization_code", "code": "not-a-code", "redirect_uri": REDIRECT}
    assert idp.token(form, auth="basic")[1] == {"error": "invalid_code"}  # client accepted, code not
    assert idp.token(form, auth="post")[1] == {"error": "invalid_code"}
    idp.client_secret = "wrong"
    assert idp.token(form, auth="basic")[0] == 403


def test_backchannel_logout(idp, logout_listener):
    idp.add_user("coach.sam", "sam-pass-1")
    _, claims = code_flow(idp, "coach.sam", "sam-pass-1")
    assert claims["sid"]
    idp.logout(sid=claims["sid"])
    path, content_type, form = logout_listener.posts.get(timeout=TIMEOUT)
    assert path == "/sso/backchannel-logout" and content_type.startswith("application/x-www-form-urlencoded")
    token = form["logout_token"][0]
    logout = verify(token, get_json(f"{idp.issuer()}/jwks"))
    assert logout["iss"] == idp.issuer() and logout["aud"] == idp.client_id
    assert logout["sub"] == claims["sub"] and logout["sid"] == claims["sid"]
    assert "http://schemas.openid.net/event/backchannel-logout" in logout["events"]
    assert "nonce" not in logout and set(logout) == {"iss", "aud", "sub", "iat", "jti", "sid", "events"}


def browser_code_flow(idp, listener, driver, username, password, otp=None, scope="openid"):
    """The code flow with PKCE through the login page in the browser; returns the ID token's claims."""
    from test_browser import shot, wait
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(8), secrets.token_urlsafe(8)
    driver.get(idp.authorize_url(listener.url, scope=scope, state=state, nonce=nonce, code_challenge=challenge))
    # No session yet: the authorization endpoint sends the browser to the provider's login page.
    wait(driver).until(lambda d: d.current_url.startswith(idp.login_page + "?"))
    try:
        arrived = idp.browser_login(driver, username, password, otp=otp)
    except AssertionError:
        shot(driver, f"oidc-browser-login-{username}")
        raise
    path, query = listener.gets.get(timeout=TIMEOUT)
    assert path == "/sso/callback" and query["state"] == [state] and len(query["code"]) == 1, (path, query)
    assert arrived.startswith(listener.url + "?")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(arrived).query)["code"] == query["code"]
    wait(driver).until(lambda d: d.find_elements("id", "signed-in"))
    assert listener.gets.empty()  # one redirect, not a loop
    tokens = idp.exchange_code(query["code"][0], listener.url, code_verifier=verifier)
    claims = verify(tokens["id_token"], get_json(f"{idp.issuer()}/jwks"))
    assert claims["iss"] == idp.issuer() and claims["aud"] == idp.client_id and claims["nonce"] == nonce
    return claims


def test_browser_login_with_password(web_idp, callback_listener, chromium):
    web_idp.add_user("front.desk", "desk-pass-1", groups=["staff"])
    claims = browser_code_flow(web_idp, callback_listener, chromium, "front.desk", "desk-pass-1")
    assert claims["amr"] == ["password"], claims
    assert claims["groups"] == ["staff"]
    assert web_idp.login_steps[0] == "password" and "otp" not in web_idp.login_steps


def test_browser_login_with_password_and_otp(web_idp, callback_listener, chromium):
    web_idp.add_user("nurse.kim", "kim-pass-1", email="kim@example.org", groups=["staff", "nurses"],
                     otp_secret=new_otp_secret())
    claims = browser_code_flow(web_idp, callback_listener, chromium, "nurse.kim", "kim-pass-1", otp=True,
                               scope="openid mfa")
    assert claims["amr"] == ["password", "otp"], claims
    assert claims["email"] == "kim@example.org" and claims["groups"] == ["staff", "nurses"]
    assert web_idp.login_steps[:3] == ["password", "grant", "otp"], web_idp.login_steps
