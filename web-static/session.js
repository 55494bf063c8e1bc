// CareHub console session, shared by the staff and admin consoles: the WebSocket, login with
// password and authenticator code (with first-time enrolment and recovery codes), and the lock
// screen when the hub ends the session. Pages pass their own handlers to CareHubSession.start,
// which puts the login, enrolment and recovery-code views in front of the page's main view.
"use strict";
const CareHubSession = (() => {
  const $ = id => document.getElementById(id);
  const wsURL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  const idleNote = "Your session was locked after inactivity. Log in again to continue.";
  let page = null;        // { mainView, onSession(me), onFrame(frame), onLock() }
  let socket = null;
  let me = null;          // { org, user, role, idle }
  let credentials = null; // kept only between the password step and the enrolment code
  let idleTimer = null;

  function show(view) {
    for (const id of ["login-view", "enroll-view", "recovery-view", page.mainView]) $(id).hidden = id !== view;
    $("logout").hidden = view !== page.mainView;
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  function open() {
    return new Promise((resolve, reject) => {
      if (socket && socket.readyState === WebSocket.OPEN) return resolve();
      socket = new WebSocket(wsURL);
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error("The hub cannot be reached."));
      socket.onmessage = event => receive(JSON.parse(event.data));
      socket.onclose = () => { if (me) lock("The connection to the hub was lost. Log in again."); };
    });
  }

  async function login(fields) {
    try {
      await open();
    } catch (error) {
      $("login-error").textContent = error.message;
      return;
    }
    const frame = { type: "login", org: fields.org, user: fields.user, password: fields.password, id: "login" };
    if (fields.totp) frame.totp = fields.totp.replace(/\s+/g, "");
    credentials = fields;
    send(frame);
  }

  function receive(frame) {
    switch (frame.type) {
      case "enroll":
        $("enroll-secret").textContent = frame.secret.replace(/(.{4})/g, "$1 ").trim();
        $("enroll-uri").href = frame.otpauthURI;
        CareHubQR.draw($("enroll-qr"), frame.otpauthURI, 5);
        $("enroll-error").textContent = "";
        show("enroll-view");
        $("enroll-form").elements.totp.focus();
        return;
      case "session":
        me = { org: credentials.org, user: frame.user, role: frame.role, idle: frame.idleTimeoutSeconds };
        credentials = null;
        $("login-form").reset();
        $("login-form").elements.org.value = me.org;
        $("who").textContent = `${me.user} · ${me.org} · ${me.role}`;
        $("lock-note").hidden = true;
        if (frame.recoveryCodes) {
          const list = $("recovery-codes");
          list.replaceChildren(...frame.recoveryCodes.map(code => { const li = document.createElement("li"); li.textContent = code; return li; }));
          show("recovery-view");
        } else {
          show(page.mainView);
        }
        touch();
        page.onSession(me);
        return;
      case "session_expired":
        lock(frame.reason === "hipaa_mode" ? "Your organisation's security settings changed. Log in again." : frame.reason === "revoked" ? "An admin changed your account. Log in again." : idleNote);
        return;
      case "logged_out":
        lock(null);
        return;
      case "error":
        if (frame.id === "login") {
          const target = $("enroll-view").hidden ? "login-error" : "enroll-error";
          $(target).textContent = frame.code === "auth_failed" ? "Those details were not accepted. Check them and try again in a moment." : frame.message;
          return;
        }
        if (frame.code === "session_expired" || frame.code === "unauthenticated") { lock(idleNote); return; }
        break;
    }
    page.onFrame(frame);
  }

  // The hub decides when a session expires; the page locks itself at the same moment so nothing
  // stays on screen for someone walking up to an unattended console.
  function touch() {
    clearTimeout(idleTimer);
    if (me && me.idle) idleTimer = setTimeout(() => lock(idleNote), me.idle * 1000);
  }

  function lock(note) {
    me = null;
    clearTimeout(idleTimer);
    page.onLock();
    $("who").textContent = "";
    $("lock-note").textContent = note || "";
    $("lock-note").hidden = !note;
    $("login-error").textContent = "";
    if (socket) { socket.onclose = null; socket.close(); socket = null; }
    show("login-view");
  }

  const views = `
<section id="login-view" class="card">
  <h1 id="login-title">Log in</h1>
  <p id="lock-note" hidden>Your session was locked after inactivity. Log in again to continue.</p>
  <form id="login-form">
    <label>Organisation <input name="org" required autocomplete="organization" value="riverside-clinic"></label>
    <label>User <input name="user" required autocomplete="username"></label>
    <label>Password <input name="password" type="password" required autocomplete="current-password"></label>
    <label>Authenticator code <input name="totp" inputmode="numeric" autocomplete="one-time-code" placeholder="123456 or a recovery code"></label>
    <button type="submit">Log in</button>
    <p id="login-error" class="error" role="alert"></p>
  </form>
</section>

<section id="enroll-view" class="card" hidden>
  <h1>Set up your authenticator</h1>
  <p>Your organisation requires a second factor. Scan this code with an authenticator app
  (Google Authenticator, Aegis, 1Password…), then enter the 6-digit code it shows. The code is drawn in
  this page; the secret goes to no outside service.</p>
  <canvas id="enroll-qr" class="qr" role="img" aria-label="QR code to scan with your authenticator app"></canvas>
  <p class="small">Can't scan? Type this secret into the app instead:</p>
  <p class="secret"><code id="enroll-secret"></code></p>
  <p class="small">Or open this link on the device with the app: <a id="enroll-uri" href="#">otpauth link</a></p>
  <form id="enroll-form">
    <label>Code from the app <input name="totp" inputmode="numeric" autocomplete="one-time-code" required></label>
    <button type="submit">Confirm</button>
    <p id="enroll-error" class="error" role="alert"></p>
  </form>
</section>

<section id="recovery-view" class="card" hidden>
  <h1>Your recovery codes</h1>
  <p>Each code logs you in once if you lose your authenticator. Store them somewhere safe now: they are shown only once.</p>
  <ol id="recovery-codes"></ol>
  <button id="recovery-done" type="button">I have stored them</button>
</section>
`;

  function start(handlers) {
    page = handlers;
    $(page.mainView).insertAdjacentHTML("beforebegin", views);
    $("login-form").addEventListener("submit", event => {
      event.preventDefault();
      const form = event.target.elements;
      login({ org: form.org.value.trim(), user: form.user.value.trim(), password: form.password.value, totp: form.totp.value.trim() });
    });
    $("enroll-form").addEventListener("submit", event => {
      event.preventDefault();
      const code = event.target.elements.totp.value.trim();
      event.target.reset();
      if (credentials) login({ ...credentials, totp: code });
    });
    $("recovery-done").addEventListener("click", () => {
      $("recovery-codes").replaceChildren();
      show(page.mainView);
    });
    $("logout").addEventListener("click", () => send({ type: "logout", id: "logout" }));
    show("login-view");
  }

  return { start, send, touch, lock, get me() { return me; } };
})();
