// CareHub console session, shared by the staff and admin consoles: the WebSocket, login with
// password and authenticator code (with first-time enrolment and recovery codes) or through the
// organisation's identity provider (single sign-on: "Log in with …"), the warning
// before the idle lock, the lock screen when the hub ends the session, and the hub's errors in
// plain words. Pages pass their own handlers to CareHubSession.start, which puts the login,
// enrolment and recovery-code views in front of the page's main view.
//
// The organisation comes from the address (staff.html?org=ID or staff.html#org=ID), else the one
// last used on this browser (localStorage, the id only), else the person types it.
"use strict";
const CareHubSession = (() => {
  const $ = id => document.getElementById(id);
  const wsURL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  const idleNote = "Your session was locked after inactivity. Log in again to continue.";
  let page = null;        // { mainView, name ("staff" or "admin"), onSession(me), onFrame(frame), onLock() }
  let socket = null;
  let me = null;          // { org, user, role, idle }
  let credentials = null; // kept only between the password (or sign-on) step and the code
  let ssoOrg = "";        // the organisation whose single sign-on the button starts
  let idleTimer = null;
  let warnTimer = null;
  let countdown = null;
  let lastUser = "";      // the lock screen keeps the user name filled in
  // The hub resets its idle timer only on user actions. A key press or click on the page is
  // one, so it is reported with an `activity` frame, at most every 30 seconds; requests the
  // page makes by itself (the room list) are not, and never keep the session alive.
  let lastReported = 0;   // when the hub last heard of a user action (ms)
  let lastSeen = 0;       // when the page last saw a key press or click (ms)
  const orgKey = "carehub.org";

  // Every error code a console can meet, in plain words.
  const plainErrors = {
    bad_json: "The page sent something the hub could not read. Reload the page.",
    too_large: "That was too long to send. Shorten it and try again.",
    binary_frame: "The page sent something the hub could not read. Reload the page.",
    unknown_type: "This page is newer or older than the hub. Reload the page.",
    invalid_field: "Something in that request was not accepted.",
    unknown_org: "There is no such organisation on this hub.",
    unauthenticated: "You are not logged in. Log in again.",
    already_authenticated: "You are already logged in on this page.",
    auth_failed: "Those details were not accepted. Check them and try again in a moment.",
    forbidden: "Your account is not allowed to do that.",
    not_found: "That conversation is not in your organisation, or no longer exists.",
    conversation_ended: "This chat has ended; nothing more can be sent in it.",
    session_expired: "Your session has ended. Log in again.",
    unavailable: "The hub is busy or restarting. Try again in a moment.",
    config_refused: "The hub refused that change.",
    conflict: "Someone else changed this in the meantime. Load it again and redo your change.",
    rate_limited: "Too many attempts in a short time. Wait a moment and try again.",
    insecure_transport: "This organisation needs a secure (https) connection to the hub. Use the hub's https address.",
    origin_refused: "This page may not connect to this organisation.",
    code_required: "Your sign-in did not include a second factor. Enter the code from your authenticator app.",
    internal: "The hub could not do that. Nothing was changed; try again.",
  };

  // The sentence for an error frame; where the hub's message carries the specifics (which
  // field, when to retry, which rule) it follows.
  function explain(frame, org) {
    if (frame.code === "unknown_org" && org) return `There is no organisation '${org}' on this hub. Check the organisation's name.`;
    const plain = plainErrors[frame.code] || "Something went wrong. Try again.";
    const detailed = ["invalid_field", "rate_limited", "config_refused", "conflict", "forbidden"];
    return detailed.includes(frame.code) && frame.message ? `${plain} (${frame.message})` : plain;
  }

  function orgFromAddress() {
    const sources = [new URLSearchParams(location.search), new URLSearchParams(location.hash.replace(/^#/, ""))];
    for (const params of sources) { const org = (params.get("org") || "").trim(); if (org) return org; }
    return "";
  }

  function rememberedOrg() {
    try { return localStorage.getItem(orgKey) || ""; } catch { return ""; }
  }

  function show(view) {
    for (const id of ["login-view", "enroll-view", "sso-code-view", "recovery-view", page.mainView]) $(id).hidden = id !== view;
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
    const frame = fields.ticket
      ? { type: "sso", org: fields.org, ticket: fields.ticket, id: "login" }
      : { type: "login", org: fields.org, user: fields.user, password: fields.password, id: "login" };
    if (!fields.ticket) lastUser = fields.user;
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
        // `token`: the session's bearer token for HTTP (attachments), in memory only.
        me = { org: credentials.org, user: frame.user, role: frame.role, idle: frame.idleTimeoutSeconds, onEnd: frame.onEnd, token: frame.token };
        credentials = null;
        lastUser = me.user;
        try { localStorage.setItem(orgKey, me.org); } catch { /* private mode: nothing remembered */ }
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
      case "subscribed":
        // What ending this chat does, as the organisation's settings say now.
        if (me && frame.onEnd) me.onEnd = frame.onEnd;
        break;
      case "session_expired":
        lock(frame.reason === "hipaa_mode" ? "Your organisation's security settings changed. Log in again." : frame.reason === "revoked" ? "An admin changed your account. Log in again." : idleNote);
        return;
      case "logged_out":
        lock(null);
        return;
      case "error":
        if (frame.id === "login" && frame.code === "code_required" && credentials && credentials.ticket) {
          // The identity provider vouched for one factor: the account's own code completes it.
          $("sso-code-error").textContent = "";
          show("sso-code-view");
          $("sso-code-form").elements.totp.focus();
          return;
        }
        if (frame.id === "login" && credentials && credentials.ticket) {
          // A wrong code may be typed again with the same ticket; any other refusal ends the
          // sign-on, and the person starts it again from the login view.
          const retry = frame.code === "auth_failed" && !($("sso-code-view").hidden && $("enroll-view").hidden);
          if (retry) {
            $($("sso-code-view").hidden ? "enroll-error" : "sso-code-error").textContent = explain(frame, credentials.org);
            return;
          }
          credentials = null;
          show("login-view");
          $("login-error").textContent = frame.code === "auth_failed"
            ? "Your sign-in was not accepted here (the account may be disabled, or the sign-in expired). Try again or ask your admin."
            : explain(frame);
          return;
        }
        if (frame.id === "login") {
          const target = $("enroll-view").hidden ? "login-error" : "enroll-error";
          $(target).textContent = explain(frame, credentials && credentials.org);
          return;
        }
        if (frame.code === "session_expired" || frame.code === "unauthenticated") { lock(idleNote); return; }
        if (!shownByPage(frame)) notice(explain(frame));
        break;
    }
    page.onFrame(frame);
  }

  // Errors the pages show in their own place (a chat that ended, the admin console's sections,
  // the assignment form, the staff console's claims, transfers, availability, canned replies and
  // read receipts); every other one appears in the notice line under the header.
  function shownByPage(frame) {
    return frame.code === "conversation_ended" || /^(assign|pipeline\.|hipaa\.|users\.|audit\.|claim|transfer|presence|team|replies|read)/.test(frame.id || "");
  }

  function notice(text) {
    $("session-notice").textContent = text;
    $("session-notice").hidden = !text;
  }

  // The hub decides when a session expires; the page locks itself at the same moment so nothing
  // stays on screen for someone walking up to an unattended console. A minute before (half the
  // timeout when it is shorter than two minutes) a warning counts down; a key press or click
  // dismisses it by telling the hub someone is there. Pages call touch() after sending a frame
  // that is a user action.
  function touch() {
    lastReported = Date.now();
    clearTimeout(idleTimer);
    clearTimeout(warnTimer);
    hideWarning();
    if (!me || !me.idle) return;
    const lead = Math.min(60, Math.floor(me.idle / 2));
    idleTimer = setTimeout(() => lock(idleNote), me.idle * 1000);
    warnTimer = setTimeout(() => {
      // Someone used the page since the hub last heard of it: say so instead of warning.
      if (lastSeen > lastReported) { reportActivity(); return; }
      showWarning(lastReported + me.idle * 1000);
    }, (me.idle - lead) * 1000);
  }

  function reportActivity() {
    if (!me) return;
    send({ type: "activity" });
    touch();
  }

  function showWarning(lockAt) {
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((lockAt - Date.now()) / 1000));
      $("idle-countdown").textContent = `${seconds} second${seconds === 1 ? "" : "s"}`;
    };
    tick();
    clearInterval(countdown);
    countdown = setInterval(tick, 1000);
    $("idle-warning").hidden = false;
  }

  function hideWarning() {
    clearInterval(countdown);
    countdown = null;
    if ($("idle-warning")) $("idle-warning").hidden = true;
  }

  // Only what a person does: trusted key presses and clicks, never a script's or a timer's.
  function sawUser(event) {
    if (!event.isTrusted || !me) return;
    lastSeen = Date.now();
    if (!$("idle-warning").hidden || lastSeen - lastReported >= 30000) reportActivity();
  }

  function lock(note) {
    me = null;
    clearTimeout(idleTimer);
    clearTimeout(warnTimer);
    hideWarning();
    notice("");
    page.onLock();
    $("who").textContent = "";
    $("lock-note").textContent = note || "";
    $("lock-note").hidden = !note;
    $("login-error").textContent = "";
    if (socket) { socket.onclose = null; socket.close(); socket = null; }
    show("login-view");
    const form = $("login-form").elements;
    if (lastUser) { form.user.value = lastUser; form.password.focus(); }
  }

  const views = `
<p id="session-notice" class="error" role="alert" hidden></p>
<p id="idle-warning" class="warning" role="alertdialog" aria-live="assertive" hidden>For your patients' privacy this console
locks in <strong id="idle-countdown"></strong> without activity. Press any key or click anywhere to stay logged in.</p>

<section id="login-view" class="card">
  <h1 id="login-title">Log in</h1>
  <p id="lock-note" hidden>Your session was locked after inactivity. Log in again to continue.</p>
  <form id="login-form">
    <label>Organisation <input name="org" required autocomplete="organization" autocapitalize="none" spellcheck="false" placeholder="your organisation's id, e.g. riverside-clinic"></label>
    <label>User <input name="user" required autocomplete="username"></label>
    <label>Password <input name="password" type="password" required autocomplete="current-password"></label>
    <label>Authenticator code <input name="totp" inputmode="numeric" autocomplete="one-time-code" placeholder="123456 or a recovery code"></label>
    <button type="submit">Log in</button>
    <p id="login-error" class="error" role="alert"></p>
  </form>
  <p id="sso-login" hidden><button id="sso-button" type="button">Log in with single sign-on</button></p>
</section>

<section id="sso-code-view" class="card" hidden>
  <h1>One more step</h1>
  <p>Your organisation needs a second factor, and your sign-in did not include one. Enter the code
  from your authenticator app (or a recovery code).</p>
  <form id="sso-code-form">
    <label>Authenticator code <input name="totp" inputmode="numeric" autocomplete="one-time-code" required></label>
    <button type="submit">Continue</button>
    <p id="sso-code-error" class="error" role="alert"></p>
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

  // Shows "Log in with …" when the organisation in the form has single sign-on.
  async function offerSSO(org) {
    ssoOrg = "";
    $("sso-login").hidden = true;
    if (!org) return;
    try {
      const answer = await fetch(`/sso/${encodeURIComponent(org)}`, { cache: "no-store" });
      if (!answer.ok) return;
      const info = await answer.json();
      if ($("login-form").elements.org.value.trim() !== org) return;
      ssoOrg = org;
      $("sso-button").textContent = `Log in with ${info.provider}`;
      $("sso-login").hidden = false;
    } catch { /* no single sign-on offered */ }
  }

  // Back from the identity provider: the ticket (or the reason it failed) is in the fragment,
  // which is taken out of the address at once so that it stays in no history or bookmark.
  function ssoReturn() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const ticket = params.get("sso");
    const failure = params.get("sso_error");
    if (!ticket && !failure) return false;
    const org = (params.get("org") || "").trim();
    history.replaceState(null, "", location.pathname + location.search + (org ? `#org=${encodeURIComponent(org)}` : ""));
    if (failure) { $("login-error").textContent = failure; return false; }
    credentials = { org, ticket };
    login(credentials);
    return true;
  }

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
    $("sso-code-form").addEventListener("submit", event => {
      event.preventDefault();
      const code = event.target.elements.totp.value.trim();
      event.target.reset();
      if (credentials) login({ ...credentials, totp: code });
    });
    $("sso-button").addEventListener("click", () => {
      if (ssoOrg) location.href = `/sso/${encodeURIComponent(ssoOrg)}/start?page=${encodeURIComponent(page.name || "staff")}`;
    });
    $("login-form").elements.org.addEventListener("change", event => offerSSO(event.target.value.trim()));
    $("recovery-done").addEventListener("click", () => {
      $("recovery-codes").replaceChildren();
      show(page.mainView);
    });
    $("logout").addEventListener("click", () => send({ type: "logout", id: "logout" }));
    for (const type of ["keydown", "pointerdown"]) document.addEventListener(type, sawUser, true);
    const org = orgFromAddress() || rememberedOrg();
    if (org) $("login-form").elements.org.value = org;
    offerSSO(org);
    // A link that changes only the #org= part does not reload the page.
    window.addEventListener("hashchange", () => {
      if (ssoReturn()) return;
      const org = orgFromAddress();
      if (org && !me) { $("login-form").elements.org.value = org; offerSSO(org); }
    });
    show("login-view");
    $("login-form").elements[org ? "user" : "org"].focus();
    ssoReturn();
  }

  return { start, send, touch, lock, explain, get me() { return me; } };
})();
