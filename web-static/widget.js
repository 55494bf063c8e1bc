// CareHub chat widget. Embed on any page with one tag:
//   <script src="https://HUB/widget.js" data-org="ORG-ID" defer></script>
// Optional: data-title="Chat with us", data-prechat="name,email,reason" (the fields to ask for).
//
// Before a chat starts it asks the hub whether the clinic is open and someone is there to answer;
// when not, it offers to leave a message instead (the pre-chat form plus the message).
//
// A page opened as PAGE#carehub-chat=TOKEN continues the conversation the clinic opened to the
// patient through its integration API (the token of POST /api/v1/orgs/ORG/conversations).
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
  const leftText = "Your message was left. The clinic will reply here when they are back; you can close this page and come back from this browser within 24 hours.";
  const nobodyText = "Nobody is available to chat right now.";
  const availabilityEvery = 60000;

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

  // A conversation the clinic opened to this patient (the integration API's visitorToken), handed
  // over in the page's address as #carehub-chat=TOKEN: kept like any reconnect token, then taken
  // out of the address so that it is not bookmarked, shared or left in the history.
  const handed = /(?:^#|&)carehub-chat=([a-z2-7]{16,128})(?=&|$)/.exec(location.hash);
  if (handed) {
    storage.keep(handed[1]);
    storage.setClosedHere(false);
    const rest = location.hash.replace(/(^#|&)carehub-chat=[a-z2-7]+/, "$1").replace(/^#&/, "#").replace(/^#$/, "");
    history.replaceState(history.state, "", location.pathname + location.search + rest);
  }

  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = new URL("widget.css", hub).href;
  document.head.appendChild(link);
  // Sending and showing files (the hub's attachments.js, shared with the staff console): the
  // attach button waits for it; attachments that arrive first are shown once it is there.
  const attachmentsReady = new Promise(resolve => {
    if (window.CareHubAttachments) { resolve(window.CareHubAttachments); return; }
    const code = document.createElement("script");
    code.src = new URL("attachments.js", hub).href;
    code.addEventListener("load", () => resolve(window.CareHubAttachments));
    document.head.appendChild(code);
  });
  let files = null; // CareHubAttachments, once loaded

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
  const queueLine = el("p", "carehub-queue", "");
  queueLine.hidden = true;
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
  // Attaching a photo or a PDF: the paper-clip opens the file picker (a file input that is not
  // seen); files may also be dropped on the panel.
  const attach = el("button", "carehub-attach", "");
  attach.type = "button";
  attach.setAttribute("aria-label", "Attach a photo or PDF");
  attach.title = "Attach a photo or PDF";
  const fileInput = el("input", "carehub-file");
  fileInput.type = "file";
  fileInput.multiple = true;
  fileInput.tabIndex = -1;
  fileInput.setAttribute("aria-hidden", "true");
  form.append(input, inputError, attach, send, end, fileInput);
  // Announcements for screen readers; outside the panel so that they are heard while it is closed.
  const announcer = el("div", "carehub-announce");
  announcer.setAttribute("role", "status");
  announcer.setAttribute("aria-live", "polite");

  const pre = el("form", "carehub-prechat");
  // Whether anyone can answer now: filled from the hub's `availability` reply.
  const notice = el("div", "carehub-availability");
  notice.hidden = true;
  const noticeText = el("p", "carehub-availability-text", "");
  const noticeHours = el("p", "carehub-hours", "");
  const noticeHint = el("p", "carehub-offline-hint", "");
  notice.append(noticeText, noticeHours, noticeHint);
  pre.appendChild(notice);
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
  // The message left when nobody can chat now; required then, and never stored.
  const leaveLabel = el("label", "carehub-leave", "Your message");
  const leaveBox = el("textarea", "carehub-leave-message");
  leaveBox.name = "message";
  leaveBox.rows = 3;
  const leaveError = el("span", "carehub-message-error", "");
  leaveError.id = "carehub-message-error-" + uid;
  leaveBox.setAttribute("aria-describedby", leaveError.id);
  leaveLabel.append(leaveBox, leaveError);
  leaveLabel.hidden = true;
  pre.appendChild(leaveLabel);
  // Leaving a message is the form's first button (Enter's) when nobody can chat now; in the form
  // only then. Open with nobody there, the patient may also wait for someone instead.
  const leaveSend = el("button", "carehub-leave-send", "Leave a message");
  leaveSend.type = "submit";
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

  panel.append(header, status, queueLine, pre, log, typing, form, mail);
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
  let offline = false;       // the pre-chat form offers to leave a message: closed, or nobody available
  let offlineChat = false;   // this chat was started by leaving a message
  let leaving = null;        // the message to send once welcomed (in memory only)
  let leftItem = null;       // that message in the log, until its ack
  let left = false;          // a message was left from this page and nobody has answered yet
  let readSeq = 0;           // the room's highest seq read by the clinic
  let queuePosition = null;
  let probe = null;          // the connection asking `availability`
  let probeTimer = null;

  function setStatus(text) { status.textContent = text; }
  const problems = new Set(Object.values(sentences).concat(fallback));
  const connectedText = () => staffReplied ? "Connected." : left ? leftText : "Connected. " + waitingText;

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

  function show(from, text, mine, at, attachment) {
    const item = el("li", mine ? "carehub-mine" : "carehub-theirs");
    const meta = el("span", "carehub-meta");
    meta.append(el("time", "carehub-time", ""), el("span", "carehub-state", ""));
    item.append(el("span", "carehub-from", mine ? "You" : from), el("span", "carehub-text", text), meta);
    if (attachment) showAttachment(item, attachment);
    setTime(item, at);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  // ---- Files ---------------------------------------------------------------------------------

  const uploads = new Map(); // list item -> the File it is sending (in memory only)
  const source = {
    url: id => hub.origin + "/attachments/" + encodeURIComponent(id) + "?org=" + encodeURIComponent(org),
    token: () => token,
  };
  let token = null; // the reconnect token, the bearer of this chat's files

  // A message's attachment, in the message's list item (before its time).
  function showAttachment(item, attachment) {
    const box = el("div", "carehub-attachment", attachment.name || "");
    item.querySelector(".carehub-meta").before(box);
    attachmentsReady.then(loaded => loaded.show(box, attachment, source));
  }

  function attachmentBoxes(id) {
    return Array.from(log.querySelectorAll(".carehub-attachment")).filter(box => box.dataset.attachment === id);
  }

  // Sends a file the patient chose or dropped, as a message of its own with its progress.
  function sendFile(file) {
    const item = show("visitor", "", true);
    const box = el("div", "carehub-attachment carehub-sending");
    box.append(el("span", "carehub-file-name", file.name), el("span", "carehub-file-size", files.sizeText(file.size)));
    item.querySelector(".carehub-meta").before(box);
    uploads.set(item, file);
    upload(item);
  }

  function upload(item) {
    const file = uploads.get(item);
    const box = item.querySelector(".carehub-attachment");
    item.classList.remove("carehub-failed");
    setState(item, "Sending…");
    const bar = files.progressBar(file);
    if (bar) box.appendChild(bar);
    const url = hub.origin + "/attachments?org=" + encodeURIComponent(org) + "&room=" + encodeURIComponent(room);
    const progress = bar ? (sent, total) => { bar.value = Math.round(100 * sent / total); } : null;
    files.upload({ url: url, token: token, file: file, progress: progress }).then(answer => {
      uploads.delete(item);
      if (seen.has(answer.seq)) { item.remove(); return; } // its message frame came first
      seen.add(answer.seq);
      box.remove();
      showAttachment(item, answer.attachment);
      markDelivered(item, answer.seq, Date.now());
      if (problems.has(status.textContent)) setStatus(connectedText());
    }, problem => {
      if (bar) bar.remove();
      if (problem.code === "conversation_ended") { uploads.delete(item); markFailed(item, false); showEnded(); return; }
      if (!problem.retryable) uploads.delete(item);
      markFailed(item, problem.retryable);
      say(files.sentence(problem.code, problem.limit));
    });
  }

  function takeFiles(list) {
    if (!joined || !files) return;
    for (const file of list) sendFile(file);
  }

  attach.addEventListener("click", () => { if (joined && files) fileInput.click(); });
  fileInput.addEventListener("change", () => {
    const chosen = Array.from(fileInput.files);
    fileInput.value = "";
    takeFiles(chosen);
    input.focus();
  });
  attachmentsReady.then(loaded => {
    files = loaded;
    fileInput.accept = loaded.accept;
    attach.replaceChildren(loaded.clip());
    loaded.dropZone(panel, () => joined && !ended, takeFiles);
    updateSendable();
  });

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
    markRead();
  }

  // The clinic has read the patient's messages up to readSeq: a mark apart from the ✓ (stored).
  function markRead() {
    for (const item of log.querySelectorAll(".carehub-mine[data-seq]")) {
      if (Number(item.dataset.seq) > readSeq || item.querySelector(".carehub-read")) continue;
      const mark = el("span", "carehub-read", "✓✓ Read");
      mark.setAttribute("role", "img");
      mark.setAttribute("aria-label", "Read by the clinic");
      mark.title = "Read by the clinic";
      item.querySelector(".carehub-meta").appendChild(mark);
    }
  }

  // The message written in the pre-chat form is stored: say what happens next.
  function messageLeft() {
    leftItem = null;
    if (offlineChat && !staffReplied) { left = true; say(leftText); }
    else setStatus(connectedText());
  }

  function showQueue(position) {
    if (typeof position !== "number" || position === queuePosition) return;
    queuePosition = position;
    const text = position > 0 ? "You are number " + position + " in the queue." : "A member of the team has your chat.";
    queueLine.textContent = text;
    queueLine.hidden = false;
    announce(text);
    // Someone has the chat now: "when they are back" no longer applies.
    if (position === 0 && left) { left = false; setStatus(connectedText()); }
  }

  function markFailed(item, retryable) {
    item.classList.add("carehub-failed");
    if (!retryable) { setState(item, "Not sent"); return; }
    const retry = el("button", "carehub-retry", "Not sent. Tap to retry");
    retry.type = "button";
    retry.addEventListener("click", () => (uploads.has(item) ? resendFile(item) : resend(item)));
    item.querySelector(".carehub-state, .carehub-retry").replaceWith(retry);
  }

  function transmit(item) {
    const id = "m" + nextID++;
    pending.set(id, item);
    setState(item, "Sending…");
    socket.send(JSON.stringify({ type: "send", room: room, text: item.querySelector(".carehub-text").textContent, id: id }));
  }

  function resendFile(item) {
    if (!joined) {
      say("We are not connected yet; your file is kept here. Please tap it again once we reconnect.");
      return;
    }
    upload(item);
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
    attach.disabled = !joined || !files;
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
    else askAvailability();
  }

  function closePanel() {
    panel.hidden = true;
    bubble.setAttribute("aria-expanded", "false");
    storage.setClosedHere(true);
    stopAsking();
    bubble.focus();
  }

  // Is the clinic open, and is someone there? Asked on its own short connection while the
  // pre-chat form shows, again every minute.
  const asking = () => !panel.hidden && !pre.hidden && !wanted && !ended && !stopped;

  function stopAsking() {
    clearTimeout(probeTimer);
    probeTimer = null;
    if (probe) { const ws = probe; probe = null; ws.onclose = null; ws.onmessage = null; try { ws.close(); } catch (e) { /* closed */ } }
  }

  function askAvailability() {
    stopAsking();
    if (!asking()) return;
    probeTimer = setTimeout(askAvailability, availabilityEvery);
    let ws;
    try { ws = new WebSocket(wsURL); } catch (e) { return; }
    probe = ws;
    const done = () => { if (probe === ws) probe = null; ws.onclose = null; ws.onmessage = null; try { ws.close(); } catch (e) { /* closed */ } };
    const gaveUp = setTimeout(done, 10000);
    ws.onopen = () => ws.send(JSON.stringify({ type: "availability", org: org, id: "availability" }));
    ws.onmessage = event => {
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type !== "availability" && !(frame.type === "error" && frame.id === "availability")) return;
      clearTimeout(gaveUp);
      done();
      if (!asking()) return;
      if (frame.type === "availability") showAvailability(frame);
      else if (fatalCodes.has(frame.code)) { showAvailability(null); say(sentences[frame.code] || fallback); }
      // Otherwise (a hub that does not answer it, or busy): the form stays as it is.
    };
    ws.onclose = () => { clearTimeout(gaveUp); if (probe === ws) probe = null; };
  }

  function opening(at) {
    const date = new Date(at);
    const now = new Date();
    const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const tomorrow = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
    let day;
    if (date.toDateString() === now.toDateString()) day = "today";
    else if (date.toDateString() === tomorrow.toDateString()) day = "tomorrow";
    else if (date - now < 6 * 24 * 60 * 60 * 1000) day = date.toLocaleDateString([], { weekday: "long" });
    else day = date.toLocaleDateString([], { weekday: "long", day: "numeric", month: "long" });
    return day + " at " + time;
  }

  // Shows the hub's answer; null: not known, the form as it always was.
  function showAvailability(frame) {
    const closedNow = !!frame && frame.open === false;
    const away = !!frame && frame.open !== false && frame.staffAvailable === false;
    let text = "";
    if (closedNow) text = typeof frame.opensAt === "number" ? "We're closed now. We open again " + opening(frame.opensAt) + "." : "We're closed now.";
    else if (away) text = nobodyText;
    const hours = frame && frame.hours ? "Opening hours: " + frame.hours + (frame.timeZone ? " (" + frame.timeZone.replace(/_/g, " ") + " time)" : "") : "";
    const changed = text !== noticeText.textContent;
    noticeText.textContent = text;
    noticeHours.textContent = text ? hours : "";
    notice.hidden = !text;
    offline = closedNow || away;
    pre.dataset.availability = !frame ? "unknown" : closedNow ? "closed" : away ? "nobody" : "open";
    noticeHint.textContent = closedNow ? "Leave a message with your details and the clinic will reply in this chat."
      : "Leave a message and the clinic will reply in this chat, or wait here for someone to be free.";
    // The message box stays while it holds something the patient wrote, or has the focus.
    leaveLabel.hidden = !offline && !leaveBox.value.trim() && document.activeElement !== leaveBox;
    // Checked by the form itself (aria-required, not required), so that the patient reads its sentence.
    if (closedNow) leaveBox.setAttribute("aria-required", "true"); else leaveBox.removeAttribute("aria-required");
    leaveLabel.firstChild.textContent = offline ? "Your message" : "Your message (optional)";
    if (offline) start.before(leaveSend); else leaveSend.remove();
    start.hidden = closedNow;
    start.textContent = away ? "Wait for someone to be free" : "Start chat";
    if (!offline) { leaveError.textContent = ""; leaveBox.removeAttribute("aria-invalid"); }
    if (changed && text) announce(text);
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
    left = false;
    leftItem = null;
    offlineChat = false;
    readSeq = 0;
    queuePosition = null;
    queueLine.hidden = true;
    pending.clear();
    uploads.clear();
    seen.clear();
    log.replaceChildren();
    form.hidden = true;
    pre.hidden = false;
    updateSendable();
    say(text);
    askAvailability();
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
      if (token) { hello.token = token; resuming = true; } else {
        if (profile) hello.profile = profile;
        if (offlineChat) hello.offline = true;
      }
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
    stopAsking();
    connect();
  }

  function welcome(frame) {
    const again = everJoined;
    joined = true;
    everJoined = true;
    attempt = 0;
    profile = null;
    room = frame.conversation;
    token = frame.token;
    storage.keep(frame.token);
    pre.hidden = true;
    form.hidden = false;
    mail.hidden = !frame.transcriptEmail;
    if (typeof frame.readSeq === "number" && frame.readSeq > readSeq) readSeq = frame.readSeq;
    updateSendable();
    const entries = frame.history.slice().sort((a, b) => a.seq - b.seq);
    for (const entry of entries) {
      if (seen.has(entry.seq)) continue;
      seen.add(entry.seq);
      const text = entry.attachment ? entry.text || "" : entry.text === null ? "(message unavailable)" : entry.text;
      if (entry.attachment) {
        const item = show(entry.from === "visitor" ? "visitor" : entry.fromName || entry.from, text, entry.from === "visitor", entry.at, entry.attachment);
        if (entry.from === "visitor") markDelivered(item, entry.seq, entry.at); else staffReplied = true;
        continue;
      }
      if (entry.from === "visitor") {
        // A message whose ack was lost with the connection, committed after all: no retry needed.
        const failed = Array.from(log.querySelectorAll(".carehub-mine.carehub-failed"))
          .find(item => !item.dataset.seq && item.querySelector(".carehub-text").textContent === text);
        if (failed) {
          markDelivered(failed, entry.seq, entry.at);
          if (failed === leftItem) messageLeft();
          continue;
        }
        markDelivered(show("visitor", text, true, entry.at), entry.seq, entry.at);
      } else {
        staffReplied = true;
        show(entry.fromName || entry.from, text, false, entry.at);
      }
    }
    markRead();
    if (leaving !== null) {
      // The message written in the pre-chat form: sent as the chat's first message.
      leftItem = show("visitor", leaving, true);
      leaving = null;
      leaveBox.value = "";
      transmit(leftItem);
      setStatus(offlineChat ? "Leaving your message…" : connectedText());
    } else if (again) say("Reconnected.");
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
        leaving = null;
        drop(ws);
        pre.hidden = false;
        say(helloSentences.invalid_field);
        askAvailability();
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
          if (item === leftItem) messageLeft();
          // A message got through: an earlier problem's sentence no longer applies.
          else if (problems.has(status.textContent)) setStatus(connectedText());
        }
        seen.add(frame.seq);
        const token = storage.token();
        if (token) storage.keep(token);
        break;
      }
      case "message": {
        if (seen.has(frame.seq)) break;
        seen.add(frame.seq);
        if (frame.from === "visitor") { // a file sent from here, or sent from this chat's other tab
          markDelivered(show("visitor", frame.text, true, frame.at, frame.attachment), frame.seq, frame.at);
          break;
        }
        staffReplied = true;
        if (left) { left = false; setStatus(connectedText()); }
        typing.textContent = "";
        show(frame.fromName || frame.from, frame.text, false, frame.at, frame.attachment);
        const said = frame.attachment ? "a file, " + (frame.attachment.name || "without a name") : frame.text;
        if (panel.hidden) {
          unread += 1;
          updateBadge();
          announce("New reply from " + (frame.fromName || frame.from) + ".");
        } else {
          announce("New reply from " + (frame.fromName || frame.from) + ": " + said);
        }
        break;
      }
      case "attachment_ready":
        // A file held for the virus check passed it: show it now.
        if (frame.room !== room) break;
        attachmentsReady.then(loaded => { for (const box of attachmentBoxes(frame.attachment)) loaded.ready(box, source); });
        break;
      case "attachment_refused":
        if (frame.room !== room) break;
        attachmentsReady.then(loaded => { for (const box of attachmentBoxes(frame.attachment)) loaded.refuse(box, frame.code); });
        break;
      case "queue":
        if (frame.room === room) showQueue(frame.position);
        break;
      case "read":
        if (frame.room === room && typeof frame.seq === "number" && frame.seq > readSeq) {
          readSeq = frame.seq;
          markRead();
        }
        break;
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

  function checkLeft(required) {
    const text = leaveBox.value.trim();
    let problem = "";
    if (bytes(text) > messageLimit) problem = "Your message is too long. Please shorten it or send it in parts.";
    else if (!text && required) problem = "Please write your message.";
    leaveError.textContent = problem;
    if (problem) leaveBox.setAttribute("aria-invalid", "true"); else leaveBox.removeAttribute("aria-invalid");
    return !problem;
  }

  function checkMessage() {
    const over = bytes(input.value.trim()) > messageLimit;
    inputError.textContent = over ? "Your message is too long. Please shorten it or send it in parts." : "";
    if (over) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    return !over;
  }

  for (const field of prechat) pre.elements[field].addEventListener("input", () => checkField(field));
  leaveBox.addEventListener("input", () => checkLeft(false));

  pre.addEventListener("submit", event => {
    event.preventDefault();
    const invalid = prechat.filter(field => !checkField(field));
    // Leaving a message (its button, or Enter), or starting a chat that waits for someone.
    const leavingNow = offline && event.submitter !== start;
    const messageOK = checkLeft(leavingNow);
    if (invalid.length) {
      pre.elements[invalid[0]].focus();
      say("Please shorten the answer marked as too long.");
      return;
    }
    if (!messageOK) {
      leaveBox.focus();
      say(leaveError.textContent);
      return;
    }
    const answers = {};
    for (const field of prechat) {
      const value = pre.elements[field].value.trim();
      if (value) answers[field] = value;
    }
    profile = Object.keys(answers).length ? answers : null;
    // Kept in the box until the hub welcomes the chat, so that a refusal loses nothing.
    leaving = leaveBox.value.trim() || null;
    offlineChat = leavingNow;
    stopAsking();
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
  // A browser may keep a page the patient left, to show it again on Back, with its sockets open
  // and silent: the clinic would see the patient as still there. Close them on leaving; on coming
  // back, continue the chat (or ask again whether anyone is there).
  window.addEventListener("pagehide", event => {
    if (!event.persisted) return;
    stopAsking();
    if (socket) lost(socket);
    clearTimeout(retryTimer);
    retryTimer = null;
  });
  window.addEventListener("pageshow", event => {
    if (!event.persisted) return;
    attempt = 0;
    if (wanted) connect(); else askAvailability();
  });
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
