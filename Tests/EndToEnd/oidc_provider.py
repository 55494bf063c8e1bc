"""A real OpenID Connect provider for the single sign-on tests: Debian's glewlwyd (2.7), started in
a temporary directory with its own configuration, SQLite database, signing keys and users, on a
free loopback port, and configured through its own admin REST API.

    with Glewlwyd(tmp_path, redirect_uris=["http://127.0.0.1:8080/sso/callback"]) as idp:
        idp.add_user("nurse.joy", "pass", email="joy@example.org", groups=["staff"], otp_secret=SECRET)
        location = idp.login(authorize_url, "nurse.joy", "pass", otp=True)  # or otp="123456"
        # or in a Selenium browser, at glewlwyd's own login page (the authorization endpoint sends
        # a browser without a session to idp.login_page):
        driver.get(authorize_url); location = idp.browser_login(driver, "nurse.joy", "pass", otp=True)

What glewlwyd 2.7.5 does, as configured here:
- issuer: f"http://127.0.0.1:{port}/api/{plugin}" (plugin "oidc", RS256; plugin "oidc-es256", ES256
  P-256); discovery at {issuer}/.well-known/openid-configuration, keys at {issuer}/jwks.
- `amr` in the ID token lists what the session authenticated *for the requested scopes*: scope
  "openid" requires the password here, so a password login gives ["password"]; scope "mfa" also
  requires the "otp" scheme, so a password + TOTP login asking for "openid mfa" gives
  ["password", "otp"]; a TOTP login asking for "openid" alone still gives ["password"]. A login
  asking for "mfa" without a second factor is refused (the provider sends the browser back to its
  login page). glewlwyd 2.7.5 never emits `acr`, and its code flow sets `auth_time` to 0 (the
  device grant sets the real time).
- TOTP: glewlwyd accepts at most one code per user every 30 s (any code is refused until a time
  step after the last accepted one); otp_code() waits for that, so give each OTP login its own user
  when a test must not wait.
- back-channel logout: `logout()` deletes the provider session; glewlwyd then POSTs a
  `logout_token` (form field, signed with the plugin's key; claims iss, aud, sub, iat, jti, sid,
  events {"http://schemas.openid.net/event/backchannel-logout": {}}) to the client's
  backchannel_logout_uri.
- token endpoint: client_secret_basic and client_secret_post both work.
- device authorization grant: `device_authorization()` and `complete_device()`.
- the web application (login, profile and admin pages) is served by glewlwyd itself from a copy in
  the temporary directory, with a config.json for this instance. Its login page asks for consent
  only for scopes other than "openid" (it treats openid as granted, and glewlwyd's authorization
  endpoint does not ask for an openid grant either).
"""

import base64
import gzip
import hashlib
import http.cookiejar
import json
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

GLEWLWYD = os.environ.get("GLEWLWYD_BIN", "/usr/bin/glewlwyd")
SCHEMA = Path("/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz")
MODULES = Path("/usr/lib/glewlwyd")
WEBAPP = Path(os.environ.get("GLEWLWYD_WEBAPP", "/usr/share/glewlwyd/webapp"))
# The static file server answers only for these extensions (the package's sample configuration).
MIME_TYPES = {".html": "text/html", ".css": "text/css", ".js": "application/javascript",
              ".json": "application/json", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".svg": "image/svg+xml", ".ttf": "font/ttf", ".woff": "font/woff", ".woff2": "font/woff2",
              ".otf": "font/otf", ".eot": "application/vnd.ms-fontobject", ".map": "application/octet-stream",
              ".ico": "image/x-icon"}
ADMIN = ("admin", "password")  # the built-in administrator of the shipped schema
SESSION_COOKIE = "GLEWLWYD2_SESSION_ID"
TIMEOUT = 20
LOGIN_PAGE = "login.html"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def totp(secret_b32, at=None, step=30, digits=6):
    """RFC 6238 code (HMAC-SHA1) of a base32 secret at a time (now by default)."""
    import hmac
    import struct
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int(time.time() if at is None else at) // step
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return "%0*d" % (digits, (struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 10 ** digits)


def new_otp_secret():
    """A random base32 TOTP secret (160 bits), without padding."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def pkce_pair():
    """(code_verifier, S256 code_challenge)."""
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def jwt_parts(token):
    """(header, claims) of a compact JWS, unverified."""
    def part(text):
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    header, claims, _ = token.split(".")
    return part(header), part(claims)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A cookie jar and urllib, without following redirects: what a user agent keeps between requests."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def request(self, method, url, body=None, form=None, headers=None):
        """(status, headers, parsed JSON or text) of a request; redirects are returned, not followed."""
        headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            response = self.opener.open(request, timeout=TIMEOUT)
        except urllib.error.HTTPError as error:
            response = error
        raw = response.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return response.status, response.headers, payload

    def cookie(self, name):
        return next((c.value for c in self.jar if c.name == name), None)


class Glewlwyd:
    """A running glewlwyd in `workdir`; a context manager (start/stop)."""

    def __init__(self, workdir, redirect_uris=(), client_id="carehub", client_secret=None,
                 backchannel_logout_uri=None, es256=True, port=None):
        self.workdir = Path(workdir) / "glewlwyd"
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.base}/api"
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.redirect_uris = list(redirect_uris)
        self.backchannel_logout_uri = backchannel_logout_uri
        self.plugins = {"oidc": "RS256"}
        if es256:
            self.plugins["oidc-es256"] = "ES256"
        self.log = self.workdir / "glewlwyd.log"
        self.login_page = f"{self.base}/{LOGIN_PAGE}"
        self.database = self.workdir / "glewlwyd.db"
        self.proc = None
        self.admin = None
        self.otp_secrets = {}
        self.otp_used = {}  # username -> time of the last accepted code
        self.started_in = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def issuer(self, plugin="oidc"):
        return f"{self.api}/{plugin}"

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_database()
        self._write_keys()
        self._write_webapp()
        config = self._write_config()
        began = time.monotonic()
        self.stderr = open(self.workdir / "glewlwyd.stderr", "w")
        self.proc = subprocess.Popen([GLEWLWYD, f"--config-file={config}"], cwd=self.workdir,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)
        self._wait_ready()
        self.started_in = time.monotonic() - began
        self.admin = Browser()
        self._login_rest(self.admin, *ADMIN)
        self._configure()
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.stderr.close()
        return self.proc.returncode if self.proc else None

    def log_text(self):
        parts = [p.read_text(errors="replace") for p in (self.log, self.workdir / "glewlwyd.stderr") if p.exists()]
        return "\n".join(parts)[-6000:]

    def _wait_ready(self):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"glewlwyd exited ({self.proc.returncode}): {self.log_text()}")
            try:
                urllib.request.urlopen(f"{self.base}/config/", timeout=2).read()
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.05)
        raise AssertionError(f"glewlwyd did not answer within {TIMEOUT}s: {self.log_text()}")

    def _write_database(self):
        if self.database.exists():
            self.database.unlink()
        with sqlite3.connect(self.database) as db:
            db.executescript(gzip.decompress(SCHEMA.read_bytes()).decode())
            # The database user backend stores only the properties in its data-format: add "groups".
            (parameters,) = db.execute("SELECT gumi_parameters FROM g_user_module_instance WHERE gumi_name='database'").fetchone()
            parameters = json.loads(parameters)
            parameters["data-format"]["groups"] = {"multiple": True, "read": True, "write": True,
                                                   "profile-read": True, "profile-write": False}
            db.execute("UPDATE g_user_module_instance SET gumi_parameters=? WHERE gumi_name='database'",
                       (json.dumps(parameters),))

    def _write_keys(self):
        def openssl(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True)
        self.keys = {}
        for plugin, alg in self.plugins.items():
            key, pub = self.workdir / f"{plugin}-key.pem", self.workdir / f"{plugin}-pub.pem"
            if alg == "RS256":
                openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key))
            else:
                openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
            openssl("pkey", "-in", str(key), "-pubout", "-out", str(pub))
            self.keys[plugin] = (key, pub)

    def _write_webapp(self):
        """A copy of the packaged login/profile/admin web application, served by glewlwyd itself at
        {base}/, with a config.json for this instance. The package's config.json is a symlink into
        /etc/glewlwyd (a directory holding config.json), so it is read from there and rewritten."""
        self.webapp = self.workdir / "webapp"
        if self.webapp.exists():
            shutil.rmtree(self.webapp)
        shutil.copytree(WEBAPP, self.webapp, ignore=lambda folder, names: ["config.json"] if Path(folder) == WEBAPP else [])
        shipped = WEBAPP / "config.json"
        if shipped.is_dir():
            shipped = shipped / "config.json"
        config = json.loads(shipped.read_text())
        config.update({
            "GlewlwydUrl": f"{self.base}/",  # the webapp reads api_prefix and the scopes from {GlewlwydUrl}config/
            "LoginUrl": self.login_page, "ProfileUrl": f"{self.base}/profile.html",
            "AdminUrl": f"{self.base}/index.html", "CallbackPage": f"{self.base}/callback.html",
            "lang": ["en"],
            # schemes the first screen offers in place of the password
            "defaultScheme": "",
            "sessionSchemes": [{"scheme_type": "otp", "scheme_name": "otp", "scheme_display_name": "login.otp-title"}],
            "register": [], "register-complete": [],
        })
        (self.webapp / "config.json").write_text(json.dumps(config, indent=2))

    def _write_config(self):
        config = self.workdir / "glewlwyd.conf"
        mime_types = ",\n".join(f'  {{ extension = "{ext}"\n    mime_type = "{mime}" }}' for ext, mime in MIME_TYPES.items())
        config.write_text(f"""\
port={self.port}
bind_address="127.0.0.1"
external_url="{self.base}"
# relative to external_url: where the authorization endpoint sends a browser without a session
login_url="{LOGIN_PAGE}"
api_prefix="api"
static_files_path="{self.webapp}/"
static_files_mime_types =
(
{mime_types}
);
allow_origin="*"
log_mode="file"
log_level="DEBUG"
log_file="{self.log}"
cookie_secure=0
cookie_same_site="empty"
session_expiration=3600
session_key="{SESSION_COOKIE}"
admin_session_authentication="cookie"
profile_session_authentication="cookie"
allow_multiple_user_per_session=false
login_api_enabled=true
add_x_frame_option_header_deny=true
max_post_size=1048576
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="{MODULES}/user"
client_module_path="{MODULES}/client"
user_auth_scheme_module_path="{MODULES}/scheme"
plugin_module_path="{MODULES}/plugin"
use_secure_connection=false
# glewlwyd reads these two even when use_secure_connection is false
secure_connection_key_file="{self.workdir}/unused.key"
secure_connection_pem_file="{self.workdir}/unused.pem"
hash_algorithm="SHA512"
database =
{{
  type = "sqlite3"
  path = "{self.database}"
}};
""")
        return config

    # -- admin API ---------------------------------------------------------------------------

    def call(self, method, path, body=None, expect=200):
        """An admin API call (path below /api); returns the parsed body."""
        status, _, payload = self.admin.request(method, f"{self.api}{path}", body=body)
        if expect is not None and status != expect:
            raise AssertionError(f"{method} /api{path} -> {status} {payload}; log: {self.log_text()}")
        return payload

    def _login_rest(self, browser, username, password):
        status, _, payload = browser.request("POST", f"{self.api}/auth/", body={"username": username, "password": password})
        if status != 200:
            raise AssertionError(f"password login of {username} -> {status} {payload}")

    def _configure(self):
        # TOTP second factor, 6 digits, 30 s; totp-window is in steps (liboath), one either side.
        self.call("POST", "/mod/scheme/", {
            "module": "otp", "name": "otp", "display_name": "Authenticator app", "expiration": 600, "max_use": 0,
            "parameters": {"issuer": "carehub-test-idp", "secret-minimum-size": 16, "otp-length": 6,
                           "hotp-allow": False, "hotp-window": 0, "totp-allow": True, "totp-window": 1,
                           "totp-start-offset": 0}})
        # openid: password required (so that amr says "password"); mfa: password and TOTP.
        self.call("PUT", "/scope/openid", {"display_name": "Open ID", "description": "Open ID Connect scope",
                                           "password_required": True, "password_max_age": 0, "scheme": {}})
        self.call("POST", "/scope/", {"name": "mfa", "display_name": "Second factor",
                                      "description": "Requires a second factor", "password_required": True,
                                      "password_max_age": 0, "scheme": {"otp": [{"scheme_type": "otp", "scheme_name": "otp"}]},
                                      "scheme_required": {"otp": 1}})
        for plugin, alg in self.plugins.items():
            key, pub = self.keys[plugin]
            self.call("POST", "/mod/plugin/", {
                "module": "oidc", "name": plugin, "display_name": f"OpenID Connect {alg}", "enabled": True,
                "parameters": {
                    "iss": self.issuer(plugin),
                    "jwt-type": "rsa" if alg == "RS256" else "ecdsa", "jwt-key-size": "256",
                    "key": key.read_text(), "cert": pub.read_text(),
                    "access-token-duration": 3600, "refresh-token-duration": 1209600, "code-duration": 600,
                    "refresh-token-rolling": False, "allow-non-oidc": False,
                    "auth-type-code-enabled": True, "auth-type-refresh-enabled": True,
                    "auth-type-device-enabled": True, "auth-type-implicit-enabled": False,
                    "auth-type-token-enabled": False, "auth-type-none-enabled": False,
                    "auth-type-password-enabled": False, "auth-type-client-enabled": False,
                    "pkce-allowed": True, "pkce-method-plain-allowed": False,
                    "subject-type": "public", "jwks-show": True,
                    "name-claim": "mandatory", "email-claim": "mandatory", "scope-claim": "no",
                    "claims": [{"name": "groups", "user-property": "groups", "type": "string", "mandatory": True},
                               {"name": "preferred_username", "user-property": "username", "type": "string", "mandatory": True}],
                    "session-management-allowed": True, "session-cookie-name": f"GLEWLWYD2_OIDC_SID_{plugin}",
                    "session-cookie-expiration": 3600,
                    "front-channel-logout-allowed": False, "back-channel-logout-allowed": True,
                    "device-authorization-expiration": 600, "device-authorization-interval": 1,
                }})
        client = {"client_id": self.client_id, "name": "CareHub", "description": "CareHub staff sign-on",
                  "enabled": True, "confidential": True, "client_secret": self.client_secret,
                  "redirect_uri": self.redirect_uris,
                  "authorization_type": ["code", "refresh_token", "device_authorization"],
                  "token_endpoint_auth_method": ["client_secret_basic", "client_secret_post"],
                  "scope": []}
        if self.backchannel_logout_uri:
            client["backchannel_logout_uri"] = self.backchannel_logout_uri
            client["backchannel_logout_session_required"] = "true"
        self.call("POST", "/client/", client)

    def add_user(self, username, password, email=None, name=None, groups=(), otp_secret=None):
        """A user allowed scopes openid and mfa; with `otp_secret` (base32), a TOTP second factor."""
        self.call("POST", "/user/", {"username": username, "password": password, "name": name or username,
                                     "email": email or f"{username}@example.org", "enabled": True,
                                     "scope": ["openid", "mfa"], "groups": list(groups)})
        if otp_secret:
            self.set_otp(username, otp_secret)

    def set_otp(self, username, secret):
        """Registers a TOTP secret (base32, SHA1, 6 digits, 30 s) for a user, as the admin."""
        self.call("POST", f"/delegate/{urllib.parse.quote(username)}/profile/scheme/register/",
                  {"username": username, "scheme_type": "otp", "scheme_name": "otp",
                   "value": {"type": "TOTP", "secret": secret, "time_step_size": 30}})
        self.otp_secrets[username] = secret

    # -- user side ---------------------------------------------------------------------------

    def otp_code(self, username):
        """A TOTP code of the user's registered secret that glewlwyd will accept now. glewlwyd takes
        at most one code per user per time step (it refuses any code until 30 s after the last
        accepted one), so this waits when the user's last OTP login is more recent."""
        last = self.otp_used.get(username)
        if last is not None:
            time.sleep(max(0.0, last + 31 - time.time()))
        return totp(self.otp_secrets[username])

    def sign_in(self, username, password, otp=None, browser=None):
        """A Browser with a glewlwyd session for the user: the password, then the second factor if
        `otp` is given: a code, or True for a code of the secret registered by add_user/set_otp."""
        browser = browser or Browser()
        self._login_rest(browser, username, password)
        if otp is not None and otp is not False:
            code = self.otp_code(username) if otp is True else otp
            status, _, payload = browser.request("POST", f"{self.api}/auth/", body={
                "username": username, "scheme_type": "otp", "scheme_name": "otp", "value": {"value": code}})
            if status != 200:
                raise AssertionError(f"otp login of {username} -> {status} {payload}")
            self.otp_used[username] = time.time()
        return browser

    def _grant(self, browser, scope):
        status, _, payload = browser.request("PUT", f"{self.api}/auth/grant/{self.client_id}", body={"scope": scope})
        if status != 200:
            raise AssertionError(f"consent to {scope!r} -> {status} {payload}")

    def login(self, authorize_url, username, password, otp=None, browser=None):
        """Signs the user in without a browser and follows `authorize_url` (an authorization request
        of the client); returns the Location of the redirect back to the client (with code and state).
        Raises AssertionError when glewlwyd sends the user to its login page instead (e.g. the
        requested scopes need a second factor that was not given)."""
        browser = self.sign_in(username, password, otp, browser)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize_url).query)
        self._grant(browser, " ".join(query.get("scope", ["openid"])[0].split()))
        url = authorize_url + ("&" if "?" in authorize_url else "?") + "g_continue"
        status, headers, payload = browser.request("GET", url)
        location = headers.get("Location")
        if status != 302 or not location:
            raise AssertionError(f"authorization -> {status} {payload}")
        if not any(location.startswith(uri) for uri in self.redirect_uris):
            raise AssertionError(f"authorization did not return to the client: {location}")
        self.last_browser = browser
        return location

    def browser_login(self, driver, username, password, otp=None, timeout=TIMEOUT):
        """Signs the user in at glewlwyd's own login page in a Selenium `driver` that a client sent
        to the authorization endpoint (which redirected it to login.html), as a person would: the
        password form, the consent screen for the requested scopes if glewlwyd shows one, the OTP
        form if the scopes need it (`otp`: a code, or True for a code of the registered secret),
        then "Continue". Returns the URL the browser arrives at, the client's redirect URI with
        code and state. Raises AssertionError when a screen does not appear or glewlwyd refuses
        (wrong password or code, a second factor asked for without `otp`).

        The screens (webapp 2.7): #passwordForm (#username, #password, #loginbut); the consent
        screen, a carousel item with a checkbox #grant-<scope> per scope besides openid (shown
        checked and disabled, without an id) and a "Grant access" button; #otpSchemeForm (#value,
        #but); then the card's footer offers Continue, which loads the authorization URL again with
        g_continue. The screens met are left in `self.login_steps`."""
        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as until
        from selenium.webdriver.support.ui import WebDriverWait

        screens = {  # checked in this order: the footer's Continue shows beside the others
            "password": "#passwordForm #loginbut",
            "grant": "#carouselBody .carousel-item.active input[id^='grant-']",
            "otp": "#otpSchemeForm #value",
            "continue": "#userCard .card-footer button.btn-success",
        }
        self.login_steps = steps = []

        def waiting(seconds=timeout):
            return WebDriverWait(driver, seconds, poll_frequency=0.1,
                                 ignored_exceptions=(StaleElementReferenceException,))

        def back_at_client(d):
            return any(d.current_url.startswith(uri) for uri in self.redirect_uris)

        def screen(d):
            if back_at_client(d):
                return "client", None
            if not d.current_url.startswith(self.base):
                return None
            for name, selector in screens.items():
                found = [e for e in d.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()]
                if found:
                    return name, found[0]
            return None

        def messages(kinds=("success", "info", "warning", "danger")):
            """The texts of the page's notifications (toasts) of these kinds."""
            try:
                return driver.execute_script(
                    "return Array.from(document.querySelectorAll('.toast'))"
                    ".filter(t => arguments[0].some(k => t.querySelector('.toast-header .text-' + k)))"
                    ".map(t => t.querySelector('.toast-body').textContent.trim())", list(kinds))
            except WebDriverException:
                return []

        def fail(what):
            raise AssertionError(f"{what} (steps {steps}, at {driver.current_url}, messages {messages()}); "
                                 f"log: {self.log_text()}")

        def gone(element, what):
            """Waits until the page drops `element` (the screen moved on, or the page was left);
            fails at once when glewlwyd reports an error instead."""
            errors = len(messages(("warning", "danger")))
            try:
                waiting().until(lambda d: until.staleness_of(element)(d)
                                or len(messages(("warning", "danger"))) > errors)
            except TimeoutException:
                fail(f"glewlwyd kept the {what} screen")
            if len(messages(("warning", "danger"))) > errors:
                fail(f"glewlwyd refused at the {what} screen")

        def type_into(element, text):
            # React-controlled inputs: check that the page holds what was typed before submitting
            # (a re-render while typing would submit a partial value), and type again if not.
            def typed(_):
                if element.get_attribute("value") == text:
                    return True
                element.clear()
                element.send_keys(text)
                return False
            try:
                waiting().until(typed)
            except TimeoutException:
                fail("could not type into the login form")

        deadline = time.monotonic() + timeout * 4
        while time.monotonic() < deadline:
            try:
                name, element = waiting().until(screen)
            except TimeoutException:
                fail("no login screen appeared")
            steps.append(name)
            if name == "client":
                return driver.current_url
            if name == "password":
                if steps.count("password") > 1:
                    fail("glewlwyd asked for the password again")
                type_into(driver.find_element(By.ID, "username"), username)
                type_into(driver.find_element(By.ID, "password"), password)
                element.click()
                gone(element, "password")
            elif name == "grant":
                if steps.count("grant") > 2:
                    fail("glewlwyd kept asking for consent")
                item = element.find_element(By.XPATH, "ancestor::div[contains(@class,'carousel-item')]")
                for box in item.find_elements(By.CSS_SELECTOR, "input[id^='grant-']"):
                    if box.is_enabled() and not box.is_selected():
                        box.click()
                button = item.find_element(By.CSS_SELECTOR, "button.btn-primary")
                button.click()
                gone(button, "consent")
            elif name == "otp":
                if otp is None or otp is False:
                    fail("the requested scopes need a second factor (OTP) and none was given")
                if steps.count("otp") > 1:
                    fail("glewlwyd refused the OTP code")
                code = self.otp_code(username) if otp is True else otp
                type_into(element, code)
                driver.find_element(By.CSS_SELECTOR, "#otpSchemeForm #but").click()
                gone(element, "OTP")
                self.otp_used[username] = time.time()
            elif name == "continue":
                if steps.count("continue") > 3:
                    fail("Continue did not lead back to the client")
                # glewlwyd redirects to the client, or back here if the session lacks a factor.
                element.click()
                gone(element, "Continue")
        fail("the login did not finish")

    def authorize_url(self, redirect_uri, scope="openid", state=None, nonce=None, code_challenge=None, plugin="oidc"):
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
                  "scope": scope, "state": state or secrets.token_urlsafe(8), "nonce": nonce or secrets.token_urlsafe(8)}
        if code_challenge:
            params.update(code_challenge=code_challenge, code_challenge_method="S256")
        return f"{self.issuer(plugin)}/auth?{urllib.parse.urlencode(params, quote_via=urllib.parse.quote)}"

    def token(self, form, auth="basic", plugin="oidc"):
        """(status, JSON) of a token endpoint request, with client_secret_basic or client_secret_post."""
        headers, form = {}, dict(form)
        if auth == "basic":
            pair = f"{urllib.parse.quote(self.client_id)}:{urllib.parse.quote(self.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif auth == "post":
            form.update(client_id=self.client_id, client_secret=self.client_secret)
        status, _, payload = Browser().request("POST", f"{self.issuer(plugin)}/token", form=form, headers=headers)
        return status, payload

    def exchange_code(self, code, redirect_uri, code_verifier=None, auth="basic", plugin="oidc"):
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if code_verifier:
            form["code_verifier"] = code_verifier
        status, payload = self.token(form, auth, plugin)
        if status != 200:
            raise AssertionError(f"token -> {status} {payload}")
        return payload

    def device_authorization(self, scope="openid", plugin="oidc"):
        """The device authorization response (device_code, user_code, verification_uri, ...)."""
        pair = f"{self.client_id}:{self.client_secret}"
        status, _, payload = Browser().request("POST", f"{self.issuer(plugin)}/device_authorization",
                                               form={"scope": scope, "client_id": self.client_id},
                                               headers={"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()})
        if status != 200:
            raise AssertionError(f"device_authorization -> {status} {payload}")
        return payload

    def complete_device(self, user_code, username, password, otp=None, scope="openid", plugin="oidc"):
        """The user's side of the device grant: signs in, consents, confirms the user code."""
        browser = self.sign_in(username, password, otp)
        self._grant(browser, scope)
        status, headers, payload = browser.request(
            "GET", f"{self.issuer(plugin)}/device?code={urllib.parse.quote(user_code)}&g_continue")
        location = headers.get("Location") or ""
        if status != 302 or "prompt=deviceComplete" not in location:
            raise AssertionError(f"device verification -> {status} {location} {payload}")
        return browser

    def logout(self, browser=None, sid=None, plugin="oidc"):
        """Ends the user's provider session `sid` (the ID token's sid claim) as the user does on the
        end-session page: glewlwyd then POSTs a logout_token to the client's backchannel_logout_uri."""
        browser = browser or self.last_browser
        status, _, payload = browser.request("DELETE", f"{self.issuer(plugin)}/session/{sid}")
        if status != 200:
            raise AssertionError(f"session delete -> {status} {payload}; log: {self.log_text()}")
