// CareHub chat widget. Embed on any page with one tag:
//   <script src="https://HUB/widget.js" data-org="ORG-ID" defer></script>
// Optional: data-title="Chat with us", data-prechat="name,email,reason" (the fields to ask for).
//
// Storage: only the reconnect token (localStorage, keyed by hub and organisation, so that every
// tab of the clinic's site continues the same chat; removed when the chat ends, when the hub
// refuses it, or 24 hours after it was last used) and whether this tab closed the panel
// (sessionStorage). Message text and pre-chat answers stay in the page, never in storage.
(function () {
  "use strict";
  const script = document.currentScript;
  const hub = new URL(script.src);
  const org = script.dataset.org;
  const title = script.dataset.title || "Chat with us";
  const prechat = (script.dataset.prechat || "name,reason").split(",").map(s => s.trim()).filter(Boolean);
  const wsURL = (hub.protocol === "https:" ? "wss://" : "ws://") + hub.host + "/ws";
  const tokenKey = "carehub.widget." + hub.origin + "." + org;
  const closedKey = tokenKey + ".closed";
  const tokenMaxAge = 24 * 60 * 60 * 1000;
  const retryCap = 30000;
  // The hub's limits, in UTF-8 bytes (docs/PROTOCOL.md).
  const limits = { name: 200, email: 254, phone: 40, reason: 1000 };
  const messageLimit = 16384;
  const encoder = new TextEncoder();
  const bytes = text => encoder.encode(text).length;

  // What the patient reads for each error code; never the hub's own message text.
  const sentences = {
    too_large: "Your message is too long. Please shorten it or send it in parts.",
    rate_limited: "You are sending messages very quickly; please wait a moment.",
    invalid_field: "This message could not be sent. Please check it and try again.",
    conversation_ended: "This chat has ended.",
    unavailable: "We could not reach the clinic; retrying…",
    internal: "Something went wrong on our side. Please try again.",
    forbidden: "That is not available in this chat.",
    not_found: "This chat could not be found.",
    insecure_transport: "This chat needs a secure connection, which this page does not have. Please contact the clinic another way.",
    origin_refused: "Chat is not available on this page. Please contact the clinic another way.",
    unknown_org: "Chat is not available on this page. Please contact the clinic another way.",
  };
  const helloSentences = {
    rate_limited: "The clinic's chat is busy right now; we will try again in a moment…",
    invalid_field: "Some of your answers could not be accepted. Please check them and try again.",
    auth_failed: "Your previous chat has ended. You can start a new one.",
  };
  const fallback = "Something went wrong. Please try again.";
  const fatalCodes = new Set(["insecure_transport", "origin_refused", "unknown_org", "forbidden"]);
  const waitingText = "A member of our team will answer as soon as they can.";
  const retryingText = "We could not reach the clinic; retrying…";

  const storage = {
    token() {
      try {
        const raw = localStorage.getItem(tokenKey);
        if (!raw) return null;
        const saved = JSON.parse(raw);
        if (saved && typeof saved.token === "string" && Date.now() - saved.savedAt < tokenMaxAge) return saved.token;
        localStorage.removeItem(tokenKey);
      } catch (e) { /* storage blocked or unreadable: no resume */ }
      return null;
    },
    keep(token) {
      try { localStorage.setItem(tokenKey, JSON.stringify({ token: token, savedAt: Date.now() })); } catch (e) { /* blocked */ }
    },
    forget() {
      try { localStorage.removeItem(tokenKey); } catch (e) { /* blocked */ }
    },
    closedHere() {
      try { return sessionStorage.getItem(closedKey) === "1"; } catch (e) { return false; }
    },
    setClosedHere(closed) {
      try { if (closed) sessionStorage.setItem(closedKey, "1"); else sessionStorage.removeItem(closedKey); } catch (e) { /* blocked */ }
    },
  };

  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = new URL("widget.css", hub).href;
  document.head.appendChild(link);

  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const uid = Math.random().toString(36).slice(2, 8);

  const bubble = el("button", "carehub-bubble");
  bubble.type = "button";
  const bubbleLabel = el("span", "carehub-bubble-label", "Chat");
  const badge = el("span", "carehub-badge", "");
  badge.hidden = true;
  badge.setAttribute("aria-hidden", "true");
  bubble.append(bubbleLabel, badge);
  const panel = el("section", "carehub-panel");
  panel.id = "carehub-panel-" + uid;
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  bubble.setAttribute("aria-controls", panel.id);
  bubble.setAttribute("aria-expanded", "false");
  const header = el("header", "carehub-header");
  const heading = el("h2", "carehub-title", title);
  heading.id = "carehub-title-" + uid;
  panel.setAttribute("aria-labelledby", heading.id);
  const close = el("button", "carehub-close", "×");
  close.type = "button";
  close.setAttribute("aria-label", "Close chat");
  header.append(heading, close);
  const status = el("p", "carehub-status", "");
  const log = el("ol", "carehub-log");
  log.setAttribute("aria-label", "Messages");
  const typing = el("p", "carehub-typing", "");
  const form = el("form", "carehub-form");
  form.noValidate = true;
  const input = el("textarea", "carehub-input");
  input.rows = 2;
  input.placeholder = "Type your message";
  input.setAttribute("aria-label", "Message");
  const inputError = el("p", "carehub-field-error", "");
  inputError.id = "carehub-input-error-" + uid;
  input.setAttribute("aria-describedby", inputError.id);
  const send = el("button", "carehub-send", "Send");
  send.type = "submit";
  const end = el("button", "carehub-end", "End chat");
  end.type = "button";
  form.append(input, inputError, send, end);
  // Announcements for screen readers; outside the panel so that they are heard while it is closed.
  const announcer = el("div", "carehub-announce");
  announcer.setAttribute("role", "status");
  announcer.setAttribute("aria-live", "polite");

  const pre = el("form", "carehub-prechat");
  const labels = { name: "Your name", email: "E-mail", phone: "Phone", reason: "How can we help?" };
  const autocomplete = { name: "name", email: "email", phone: "tel" };
  const fieldErrors = {};
  for (const field of prechat) {
    const label = el("label", "", labels[field] || field);
    const box = field === "reason" ? el("textarea") : el("input");
    box.name = field;
    if (field === "email") box.type = "email";
    if (field === "phone") box.type = "tel";
    if (autocomplete[field]) box.autocomplete = autocomplete[field];
    const error = el("span", "carehub-field-error", "");
    error.id = "carehub-" + field + "-error-" + uid;
    box.setAttribute("aria-describedby", error.id);
    fieldErrors[field] = error;
    label.append(box, error);
    pre.appendChild(label);
  }
  const start = el("button", "carehub-start", "Start chat");
  start.type = "submit";
  pre.appendChild(start);

  // "E-mail me a transcript": shown only when the organisation offers it (never in HIPAA mode).
  const mail = el("form", "carehub-transcript");
  const mailLabel = el("label", "", "E-mail me a transcript");
  const mailBox = el("input");
  mailBox.type = "email";
  mailBox.name = "to";
  mailBox.required = true;
  mailBox.autocomplete = "email";
  mailLabel.appendChild(mailBox);
  const mailSend = el("button", "carehub-transcript-send", "Send it when the chat ends");
  mailSend.type = "submit";
  mail.append(mailLabel, mailSend);
  mail.hidden = true;

  panel.append(header, status, pre, log, typing, form, mail);
  document.body.append(bubble, panel, announcer);

  let socket = null;     // the WebSocket, open or opening
  let joined = false;    // welcomed on the current socket
  let wanted = false;    // the patient started (or is resuming) a chat
  let ended = false;
  let stopped = false;   // an error no retry can fix
  let profile = null;    // the pre-chat answers until the hub welcomes them (in memory only)
  let room = null;
  let attempt = 0;       // reconnection attempts since the last welcome
  let retryTimer = null;
  let everJoined = false;
  let staffReplied = false;
  let unread = 0;
  let focusOnWelcome = false; // the patient just sent the pre-chat form from this page
  let nextID = 1;
  const pending = new Map(); // request id -> list item awaiting its ack
  const seen = new Set();    // message seqs already shown
  let typingTimer = null;
  let lastTyping = 0;

  function setStatus(text) { status.textContent = text; }
  const problems = new Set(Object.values(sentences).concat(fallback));
  const connectedText = () => staffReplied ? "Connected." : "Connected. " + waitingText;

  function announce(text) {
    const line = el("p", "", text);
    announcer.appendChild(line);
    while (announcer.childElementCount > 5) announcer.firstElementChild.remove();
  }

  function say(text) { setStatus(text); announce(text); }

  function timeLabel(at) {
    const date = new Date(at);
    const now = new Date();
    const time = date.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
    if (date.toDateString() === now.toDateString()) return time;
    const day = { day: "numeric", month: "short" };
    if (date.getFullYear() !== now.getFullYear()) day.year = "numeric";
    return date.toLocaleDateString([], day) + ", " + time;
  }

  function setTime(item, at) {
    if (typeof at !== "number") return;
    const stamp = item.querySelector("time");
    stamp.dateTime = new Date(at).toISOString();
    stamp.textContent = timeLabel(at);
    stamp.title = new Date(at).toLocaleString();
  }

  function show(from, text, mine, at) {
    const item = el("li", mine ? "carehub-mine" : "carehub-theirs");
    const meta = el("span", "carehub-meta");
    meta.append(el("time", "carehub-time", ""), el("span", "carehub-state", ""));
    item.append(el("span", "carehub-from", mine ? "You" : from), el("span", "carehub-text", text), meta);
    setTime(item, at);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function setState(item, text, label) {
    const old = item.querySelector(".carehub-state, .carehub-retry");
    const state = el("span", "carehub-state", text);
    if (label) state.setAttribute("aria-label", label);
    old.replaceWith(state);
    return state;
  }

  function markDelivered(item, seq, at) {
    item.classList.remove("carehub-failed");
    item.dataset.seq = String(seq);
    setTime(item, at);
    setState(item, "✓", "delivered").title = "delivered";
  }

  function markFailed(item, retryable) {
    item.classList.add("carehub-failed");
    if (!retryable) { setState(item, "Not sent"); return; }
    const retry = el("button", "carehub-retry", "Not sent. Tap to retry");
    retry.type = "button";
    retry.addEventListener("click", () => resend(item));
    item.querySelector(".carehub-state, .carehub-retry").replaceWith(retry);
  }

  function transmit(item) {
    const id = "m" + nextID++;
    pending.set(id, item);
    setState(item, "Sending…");
    socket.send(JSON.stringify({ type: "send", room: room, text: item.querySelector(".carehub-text").textContent, id: id }));
  }

  function resend(item) {
    if (!joined) {
      say("We are not connected yet; your message is kept here. Please tap it again once we reconnect.");
      return;
    }
    item.classList.remove("carehub-failed");
    transmit(item);
    input.focus();
  }

  function updateBadge() {
    badge.hidden = unread === 0;
    badge.textContent = unread > 9 ? "9+" : String(unread);
    // The accessible name contains the visible "Chat" (WCAG 2.5.3).
    const name = /chat/i.test(title) ? title : "Chat: " + title;
    const label = unread === 0 ? name : name + ", " + unread + (unread === 1 ? " new reply" : " new replies");
    bubble.setAttribute("aria-label", label);
  }

  function updateSendable() {
    end.disabled = !joined;
  }

  function focusInside() {
    const target = !pre.hidden ? pre.querySelector("input, textarea, button") : !form.hidden ? input : close;
    target.focus();
  }

  function openPanel() {
    panel.hidden = false;
    bubble.setAttribute("aria-expanded", "true");
    storage.setClosedHere(false);
    unread = 0;
    updateBadge();
    focusInside();
    if (!socket && !ended && storage.token()) resume();
  }

  function closePanel() {
    panel.hidden = true;
    bubble.setAttribute("aria-expanded", "false");
    storage.setClosedHere(true);
    bubble.focus();
  }

  function drop(ws) {
    if (socket === ws) socket = null;
    ws.onclose = null;
    ws.onmessage = null;
    try { ws.close(); } catch (e) { /* already closed */ }
  }

  function showEnded() {
    ended = true;
    wanted = false;
    joined = false;
    clearTimeout(retryTimer);
    if (socket) drop(socket);
    storage.forget();
    form.hidden = true;
    mail.hidden = true;
    typing.textContent = "";
    for (const item of pending.values()) markFailed(item, false);
    pending.clear();
    for (const retry of log.querySelectorAll(".carehub-retry")) retry.replaceWith(el("span", "carehub-state", "Not sent"));
    updateSendable();
    say("This chat has ended. Thank you.");
    if (!panel.hidden && (document.activeElement === document.body || form.contains(document.activeElement))) close.focus();
  }

  // The hub no longer knows the saved chat: offer a new one.
  function restart(text) {
    if (socket) drop(socket);
    joined = false;
    wanted = false;
    room = null;
    everJoined = false;
    staffReplied = false;
    pending.clear();
    seen.clear();
    log.replaceChildren();
    form.hidden = true;
    pre.hidden = false;
    updateSendable();
    say(text);
  }

  function scheduleRetry(text) {
    clearTimeout(retryTimer);
    if (ended || stopped || !wanted) return;
    setStatus(text || retryingText);
    const delay = Math.min(retryCap, 1000 * 2 ** attempt * (0.8 + 0.4 * Math.random()));
    attempt += 1;
    retryTimer = setTimeout(connect, delay);
  }

  function lost(ws, text) {
    const wasJoined = joined;
    drop(ws);
    joined = false;
    typing.textContent = "";
    for (const item of pending.values()) markFailed(item, true);
    pending.clear();
    updateSendable();
    if (ended || stopped) return;
    if (wasJoined) announce("Connection lost. Retrying…");
    scheduleRetry(text);
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (socket || ended || stopped || !wanted) return;
    let ws;
    try { ws = new WebSocket(wsURL); } catch (e) { scheduleRetry(); return; }
    socket = ws;
    if (attempt === 0) setStatus("Connecting…");
    let resuming = false;
    ws.onopen = () => {
      const hello = { type: "hello", org: org, id: "hello" };
      const token = storage.token();
      if (token) { hello.token = token; resuming = true; } else if (profile) hello.profile = profile;
      if (!token && everJoined) { restart(helloSentences.auth_failed); return; } // ended in another tab
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = event => {
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      receive(ws, frame, resuming);
    };
    ws.onclose = () => lost(ws);
  }

  function resume() {
    wanted = true;
    pre.hidden = true;
    connect();
  }

  function welcome(frame) {
    const again = everJoined;
    joined = true;
    everJoined = true;
    attempt = 0;
    profile = null;
    room = frame.conversation;
    storage.keep(frame.token);
    pre.hidden = true;
    form.hidden = false;
    mail.hidden = !frame.transcriptEmail;
    updateSendable();
    const entries = frame.history.slice().sort((a, b) => a.seq - b.seq);
    for (const entry of entries) {
      if (seen.has(entry.seq)) continue;
      seen.add(entry.seq);
      const text = entry.text === null ? "(message unavailable)" : entry.text;
      if (entry.from === "visitor") {
        // A message whose ack was lost with the connection, committed after all: no retry needed.
        const failed = Array.from(log.querySelectorAll(".carehub-mine.carehub-failed"))
          .find(item => !item.dataset.seq && item.querySelector(".carehub-text").textContent === text);
        if (failed) { markDelivered(failed, entry.seq, entry.at); continue; }
        markDelivered(show("visitor", text, true, entry.at), entry.seq, entry.at);
      } else {
        staffReplied = true;
        show(entry.fromName || entry.from, text, false, entry.at);
      }
    }
    if (again) say("Reconnected.");
    else setStatus(connectedText());
    // The focus was on the pre-chat form, now hidden: move it to the message box.
    if (focusOnWelcome && !panel.hidden && (document.activeElement === document.body || pre.contains(document.activeElement))) focusInside();
    focusOnWelcome = false;
  }

  function refused(ws, frame, resuming) {
    const code = frame.code;
    if (frame.id === "hello") {
      if (resuming && (code === "auth_failed" || code === "invalid_field" || code === "not_found")) {
        storage.forget();
        restart(helloSentences.auth_failed);
        return;
      }
      if (fatalCodes.has(code)) {
        stopped = true;
        drop(ws);
        say(sentences[code] || fallback);
        return;
      }
      if (code === "invalid_field" && !resuming) {
        wanted = false;
        drop(ws);
        pre.hidden = false;
        say(helloSentences.invalid_field);
        return;
      }
      // Busy, shutting down or failed: try again later, keeping the token or the answers.
      lost(ws, code === "rate_limited" ? helloSentences.rate_limited : retryingText);
      return;
    }
    if (code === "conversation_ended") { showEnded(); return; }
    if (code === "unavailable") { lost(ws); return; }
    if (code === "session_expired") { lost(ws); return; }
    // A frame too large to read has no id; the hub answers in order, so it is the oldest request.
    const id = frame.id || (code === "too_large" ? pending.keys().next().value : undefined);
    if (id && pending.has(id)) {
      const item = pending.get(id);
      pending.delete(id);
      markFailed(item, code !== "too_large" && code !== "invalid_field");
    }
    if (id === "transcript" && code === "forbidden") { mail.hidden = true; say("E-mailing a transcript is not available here."); return; }
    say(sentences[code] || fallback);
  }

  function receive(ws, frame, resuming) {
    switch (frame.type) {
      case "welcome":
        welcome(frame);
        break;
      case "ack": {
        const item = pending.get(frame.id);
        if (item) {
          markDelivered(item, frame.seq, frame.at);
          pending.delete(frame.id);
          // A message got through: an earlier problem's sentence no longer applies.
          if (problems.has(status.textContent)) setStatus(connectedText());
        }
        seen.add(frame.seq);
        const token = storage.token();
        if (token) storage.keep(token);
        break;
      }
      case "message": {
        if (seen.has(frame.seq)) break;
        seen.add(frame.seq);
        if (frame.from === "visitor") { // sent from this chat's other tab
          markDelivered(show("visitor", frame.text, true, frame.at), frame.seq, frame.at);
          break;
        }
        staffReplied = true;
        typing.textContent = "";
        show(frame.fromName || frame.from, frame.text, false, frame.at);
        if (panel.hidden) {
          unread += 1;
          updateBadge();
          announce("New reply from " + (frame.fromName || frame.from) + ".");
        } else {
          announce("New reply from " + (frame.fromName || frame.from) + ": " + frame.text);
        }
        break;
      }
      case "typing":
        if (frame.from === "visitor") break;
        typing.textContent = (frame.fromName || frame.from) + " is typing…";
        clearTimeout(typingTimer);
        typingTimer = setTimeout(() => { typing.textContent = ""; }, 4000);
        break;
      case "ended":
        showEnded();
        break;
      case "transcript_requested":
        mail.hidden = true;
        say("We will e-mail you a transcript when the chat ends.");
        break;
      case "session_expired":
        // The hub ended this connection's session: resume with the token on a new one.
        lost(ws);
        break;
      case "error":
        refused(ws, frame, resuming);
        break;
    }
  }

  function checkField(field) {
    const box = pre.elements[field];
    const over = limits[field] !== undefined && bytes(box.value.trim()) > limits[field];
    fieldErrors[field].textContent = over ? "This is too long; please shorten it." : "";
    if (over) box.setAttribute("aria-invalid", "true"); else box.removeAttribute("aria-invalid");
    return !over;
  }

  function checkMessage() {
    const over = bytes(input.value.trim()) > messageLimit;
    inputError.textContent = over ? "Your message is too long. Please shorten it or send it in parts." : "";
    if (over) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    return !over;
  }

  for (const field of prechat) pre.elements[field].addEventListener("input", () => checkField(field));

  pre.addEventListener("submit", event => {
    event.preventDefault();
    const invalid = prechat.filter(field => !checkField(field));
    if (invalid.length) {
      pre.elements[invalid[0]].focus();
      say("Please shorten the answer marked as too long.");
      return;
    }
    const answers = {};
    for (const field of prechat) {
      const value = pre.elements[field].value.trim();
      if (value) answers[field] = value;
    }
    profile = Object.keys(answers).length ? answers : null;
    ended = false;
    stopped = false;
    wanted = true;
    attempt = 0;
    focusOnWelcome = true;
    connect();
  });

  input.addEventListener("input", () => {
    checkMessage();
    const now = Date.now();
    if (joined && now - lastTyping > 3000) {
      lastTyping = now;
      socket.send(JSON.stringify({ type: "typing", room: room }));
    }
  });

  form.addEventListener("submit", event => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (!checkMessage()) {
      say("Your message is too long. Please shorten it or send it in parts.");
      input.focus();
      return;
    }
    const item = show("visitor", text, true);
    input.value = "";
    if (joined) transmit(item);
    else {
      markFailed(item, true);
      say("We could not reach the clinic, so your message was not sent. Tap it to retry once we reconnect.");
    }
  });

  input.addEventListener("keydown", event => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  mail.addEventListener("submit", event => {
    event.preventDefault();
    if (joined) socket.send(JSON.stringify({ type: "transcript", room: room, to: mailBox.value.trim(), id: "transcript" }));
    else say("We are not connected right now. Please try again in a moment.");
  });

  end.addEventListener("click", () => {
    if (joined && confirm("End this chat?")) socket.send(JSON.stringify({ type: "end", room: room, id: "end" }));
  });

  bubble.addEventListener("click", () => { if (panel.hidden) openPanel(); else closePanel(); });
  close.addEventListener("click", closePanel);
  bubble.addEventListener("keydown", event => {
    if (event.key === "Escape" && !panel.hidden) { event.preventDefault(); closePanel(); }
  });
  panel.addEventListener("keydown", event => {
    if (event.key === "Escape") { event.preventDefault(); closePanel(); }
  });

  // Back on line or back to the tab: retry at once rather than at the end of the back-off.
  const retryNow = () => { if (retryTimer && !socket) { attempt = Math.max(0, attempt - 1); connect(); } };
  window.addEventListener("online", retryNow);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") retryNow(); });
  // A chat started in another tab of this site: continue it here too.
  window.addEventListener("storage", event => {
    if (event.key === tokenKey && event.newValue && !socket && !wanted && !ended) resume();
  });

  form.hidden = true;
  updateBadge();
  updateSendable();
  if (storage.token()) {
    // A reload, or another tab of the same site, during a chat: resume it.
    if (!storage.closedHere()) {
      panel.hidden = false;
      bubble.setAttribute("aria-expanded", "true");
    }
    resume();
  }
})();
