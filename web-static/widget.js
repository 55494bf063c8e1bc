// CareHub chat widget. Embed on any page with one tag:
//   <script src="https://HUB/widget.js" data-org="ORG-ID" defer></script>
// Optional: data-title="Chat with us", data-prechat="name,email,reason" (the fields to ask for).
(function () {
  "use strict";
  const script = document.currentScript;
  const hub = new URL(script.src);
  const org = script.dataset.org;
  const title = script.dataset.title || "Chat with us";
  const prechat = (script.dataset.prechat || "name,reason").split(",").map(s => s.trim()).filter(Boolean);
  const wsURL = (hub.protocol === "https:" ? "wss://" : "ws://") + hub.host + "/ws";
  const tokenKey = "carehub.widget." + org;

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

  const bubble = el("button", "carehub-bubble", "Chat");
  bubble.type = "button";
  bubble.setAttribute("aria-label", title);
  const panel = el("section", "carehub-panel");
  panel.hidden = true;
  panel.setAttribute("aria-label", title);
  const header = el("header", "carehub-header", title);
  const status = el("p", "carehub-status", "");
  const log = el("ol", "carehub-log");
  log.setAttribute("aria-live", "polite");
  const typing = el("p", "carehub-typing", "");
  const form = el("form", "carehub-form");
  const input = el("textarea", "carehub-input");
  input.rows = 2;
  input.placeholder = "Type your message";
  input.setAttribute("aria-label", "Message");
  const send = el("button", "carehub-send", "Send");
  send.type = "submit";
  const end = el("button", "carehub-end", "End chat");
  end.type = "button";
  form.append(input, send, end);

  const pre = el("form", "carehub-prechat");
  const labels = { name: "Your name", email: "E-mail", phone: "Phone", reason: "How can we help?" };
  for (const field of prechat) {
    const label = el("label", "", labels[field] || field);
    const box = field === "reason" ? el("textarea") : el("input");
    box.name = field;
    if (field === "email") box.type = "email";
    label.appendChild(box);
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
  mailLabel.appendChild(mailBox);
  const mailSend = el("button", "carehub-transcript-send", "Send it when the chat ends");
  mailSend.type = "submit";
  mail.append(mailLabel, mailSend);
  mail.hidden = true;

  panel.append(header, status, pre, log, typing, form, mail);
  document.body.append(bubble, panel);

  let socket = null;
  let room = null;
  let ended = false;
  let nextID = 1;
  const pending = new Map(); // request id -> list item awaiting its ack
  const seen = new Set();    // message seqs already shown
  let typingTimer = null;
  let lastTyping = 0;

  function setStatus(text) { status.textContent = text; }

  function show(from, text, mine, state) {
    const item = el("li", mine ? "carehub-mine" : "carehub-theirs");
    item.append(el("span", "carehub-from", mine ? "You" : (from === "visitor" ? "You" : from)), el("span", "carehub-text", text));
    const mark = el("span", "carehub-state", state || "");
    item.appendChild(mark);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function showEnded() {
    ended = true;
    form.hidden = true;
    mail.hidden = true;
    setStatus("This chat has ended. Thank you.");
    sessionStorage.removeItem(tokenKey);
  }

  function connect(profile) {
    socket = new WebSocket(wsURL);
    setStatus("Connecting…");
    socket.onopen = () => {
      const hello = { type: "hello", org: org, id: "hello" };
      const token = sessionStorage.getItem(tokenKey);
      if (token) hello.token = token;
      else if (profile) hello.profile = profile;
      socket.send(JSON.stringify(hello));
    };
    socket.onmessage = event => {
      const frame = JSON.parse(event.data);
      switch (frame.type) {
        case "welcome":
          room = frame.conversation;
          sessionStorage.setItem(tokenKey, frame.token);
          pre.hidden = true;
          form.hidden = false;
          setStatus("Connected. A member of our team will answer shortly.");
          mail.hidden = !frame.transcriptEmail;
          for (const entry of frame.history) {
            if (seen.has(entry.seq)) continue;
            seen.add(entry.seq);
            show(entry.from, entry.text === null ? "(message unavailable)" : entry.text, entry.from === "visitor", entry.from === "visitor" ? "✓" : "");
          }
          break;
        case "ack": {
          const item = pending.get(frame.id);
          if (item) {
            item.querySelector(".carehub-state").textContent = "✓";
            item.querySelector(".carehub-state").title = "delivered";
            pending.delete(frame.id);
          }
          seen.add(frame.seq);
          break;
        }
        case "message":
          if (seen.has(frame.seq)) break;
          seen.add(frame.seq);
          typing.textContent = "";
          show(frame.from, frame.text, false);
          break;
        case "typing":
          typing.textContent = frame.from + " is typing…";
          clearTimeout(typingTimer);
          typingTimer = setTimeout(() => { typing.textContent = ""; }, 4000);
          break;
        case "ended":
          showEnded();
          break;
        case "transcript_requested":
          mail.hidden = true;
          setStatus("We will e-mail you a transcript when the chat ends.");
          break;
        case "session_expired":
          setStatus("Your chat session has expired. Reload the page to continue.");
          break;
        case "error":
          if (frame.id === "hello" && sessionStorage.getItem(tokenKey)) {
            // The conversation is over or too old to resume: start afresh.
            sessionStorage.removeItem(tokenKey);
            if (frame.code === "auth_failed") { showEnded(); break; }
          }
          if (frame.id && pending.has(frame.id)) {
            const item = pending.get(frame.id);
            item.querySelector(".carehub-state").textContent = "not sent";
            item.classList.add("carehub-failed");
            pending.delete(frame.id);
          }
          if (frame.code === "conversation_ended") showEnded();
          else setStatus(frame.message);
          break;
      }
    };
    socket.onclose = () => {
      if (ended) return;
      setStatus("Connection lost; reconnecting…");
      for (const item of pending.values()) item.querySelector(".carehub-state").textContent = "not sent";
      pending.clear();
      setTimeout(() => connect(null), 2000);
    };
  }

  pre.addEventListener("submit", event => {
    event.preventDefault();
    const profile = {};
    for (const field of prechat) {
      const value = pre.elements[field].value.trim();
      if (value) profile[field] = value;
    }
    connect(Object.keys(profile).length ? profile : null);
  });

  form.addEventListener("submit", event => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
    const id = "m" + nextID++;
    pending.set(id, show("visitor", text, true, "…"));
    socket.send(JSON.stringify({ type: "send", room: room, text: text, id: id }));
    input.value = "";
  });

  input.addEventListener("keydown", event => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  input.addEventListener("input", () => {
    const now = Date.now();
    if (socket && socket.readyState === WebSocket.OPEN && room && now - lastTyping > 3000) {
      lastTyping = now;
      socket.send(JSON.stringify({ type: "typing", room: room }));
    }
  });

  mail.addEventListener("submit", event => {
    event.preventDefault();
    if (socket && room) socket.send(JSON.stringify({ type: "transcript", room: room, to: mailBox.value.trim(), id: "transcript" }));
  });

  end.addEventListener("click", () => {
    if (socket && room && confirm("End this chat?")) socket.send(JSON.stringify({ type: "end", room: room, id: "end" }));
  });

  bubble.addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    if (!panel.hidden && !socket && sessionStorage.getItem(tokenKey)) connect(null);
  });

  form.hidden = true;
  if (sessionStorage.getItem(tokenKey)) {
    // A reload during a chat: reopen and resume it.
    panel.hidden = false;
    pre.hidden = true;
    connect(null);
  }
})();
