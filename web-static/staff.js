// CareHub staff console: log in (password + TOTP, with first-time enrolment), watch the room
// list, read and answer conversations, end chats. Locks on idle expiry and asks for a full login.
"use strict";
const $ = id => document.getElementById(id);
const wsURL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";

let socket = null;
let me = null;          // { org, user, role, idleTimeoutSeconds }
let credentials = null; // kept only between the password step and the enrolment code
let current = null;     // the open room id
let nextID = 1;
const rooms = new Map(); // id -> { startedAt, ended, unread, item }
const seen = new Map();  // room -> Set of seqs shown
let idleTimer = null;
let typingTimer = null;
let lastTyping = 0;

function show(view) {
  for (const id of ["login-view", "enroll-view", "recovery-view", "console-view"]) $(id).hidden = id !== view;
  $("logout").hidden = view !== "console-view";
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
      break;
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
        show("console-view");
      }
      touch();
      send({ type: "rooms", id: "rooms" });
      break;
    case "rooms":
      for (const entry of frame.rooms) addRoom(entry.room, entry.startedAt, entry.ended);
      break;
    case "room_opened":
      addRoom(frame.room, frame.at, false);
      break;
    case "subscribed":
      if (frame.room !== current) break;
      $("messages").replaceChildren();
      seen.set(frame.room, new Set());
      for (const entry of frame.history) addMessage(frame.room, entry.seq, entry.from, entry.text);
      $("room-visitor").textContent = frame.visitor ? Object.entries(frame.visitor).map(([k, v]) => `${k}: ${v}`).join(" · ") : "";
      setEnded(frame.room, frame.ended);
      break;
    case "message":
      if (frame.room === current) addMessage(frame.room, frame.seq, frame.from, frame.text);
      else bumpUnread(frame.room);
      if (frame.room === current) $("typing").textContent = "";
      break;
    case "ack":
      if (frame.room === current) addMessage(frame.room, frame.seq, me.user, pendingText.get(frame.id) || "");
      pendingText.delete(frame.id);
      break;
    case "typing":
      if (frame.room === current) {
        $("typing").textContent = `${frame.from} is typing…`;
        clearTimeout(typingTimer);
        typingTimer = setTimeout(() => { $("typing").textContent = ""; }, 4000);
      }
      break;
    case "ended":
      setEnded(frame.room, true);
      break;
    case "session_expired":
      lock(frame.reason === "hipaa_mode" ? "Your organisation's security settings changed. Log in again." : "Your session was locked after inactivity. Log in again to continue.");
      break;
    case "logged_out":
      lock(null);
      break;
    case "error":
      if (frame.id === "login") {
        const target = $("enroll-view").hidden ? "login-error" : "enroll-error";
        $(target).textContent = frame.code === "auth_failed" ? "Those details were not accepted. Check them and try again in a moment." : frame.message;
      } else if (frame.code === "session_expired" || frame.code === "unauthenticated") {
        lock("Your session was locked after inactivity. Log in again to continue.");
      } else if (frame.code === "conversation_ended") {
        setEnded(current, true);
      } else {
        console.warn("hub error", frame);
      }
      break;
  }
}

const pendingText = new Map();

function addRoom(id, startedAt, ended) {
  let room = rooms.get(id);
  if (!room) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.room = id;
    button.addEventListener("click", () => openRoom(id));
    item.appendChild(button);
    room = { startedAt, ended, unread: 0, item, button };
    rooms.set(id, room);
    $("rooms").prepend(item);
  }
  room.ended = room.ended || ended;
  renderRoom(id);
}

function renderRoom(id) {
  const room = rooms.get(id);
  const time = new Date(room.startedAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  room.button.textContent = `Visitor ${id.slice(-6)} · ${time}${room.ended ? " · ended" : ""}`;
  if (room.unread) {
    const badge = document.createElement("span");
    badge.className = "unread";
    badge.textContent = room.unread;
    room.button.appendChild(badge);
  }
  room.item.classList.toggle("ended", room.ended);
  room.button.classList.toggle("active", id === current);
}

function bumpUnread(id) {
  const room = rooms.get(id);
  if (!room) return;
  room.unread += 1;
  renderRoom(id);
}

function openRoom(id) {
  if (current && current !== id) send({ type: "unsubscribe", room: current, id: "u" + nextID++ });
  current = id;
  const room = rooms.get(id);
  room.unread = 0;
  for (const key of rooms.keys()) renderRoom(key);
  $("room-empty").hidden = true;
  $("room-pane").hidden = false;
  $("room-title").textContent = `Visitor ${id.slice(-6)}`;
  $("messages").replaceChildren();
  send({ type: "subscribe", room: id, id: "s" + nextID++ });
  touch();
}

function addMessage(room, seq, from, text) {
  const shown = seen.get(room) || new Set();
  seen.set(room, shown);
  if (shown.has(seq)) return;
  shown.add(seq);
  const item = document.createElement("li");
  item.className = from === me.user ? "mine" : "theirs";
  const who = document.createElement("span");
  who.className = "from";
  who.textContent = from === "visitor" ? "Visitor" : from;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text === null ? "(this message could not be decrypted)" : text;
  item.append(who, body);
  const list = $("messages");
  const after = [...list.children].find(child => Number(child.dataset.seq) > seq);
  item.dataset.seq = seq;
  list.insertBefore(item, after || null);
  list.scrollTop = list.scrollHeight;
}

function setEnded(room, ended) {
  const entry = rooms.get(room);
  if (entry && ended) { entry.ended = true; renderRoom(room); }
  if (room === current) {
    $("reply-form").hidden = ended;
    $("end-chat").hidden = ended;
    if (ended) $("typing").textContent = "This chat has ended.";
  }
}

// The hub decides when a session expires; the page locks itself at the same moment so nothing
// stays on screen for someone walking up to an unattended console.
function touch() {
  clearTimeout(idleTimer);
  if (me && me.idle) idleTimer = setTimeout(() => lock("Your session was locked after inactivity. Log in again to continue."), me.idle * 1000);
}

function lock(note) {
  me = null;
  current = null;
  clearTimeout(idleTimer);
  rooms.clear();
  seen.clear();
  $("rooms").replaceChildren();
  $("messages").replaceChildren();
  $("room-visitor").textContent = "";
  $("room-pane").hidden = true;
  $("room-empty").hidden = false;
  $("who").textContent = "";
  $("lock-note").textContent = note || "";
  $("lock-note").hidden = !note;
  $("login-error").textContent = "";
  if (socket) { socket.onclose = null; socket.close(); socket = null; }
  show("login-view");
}

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
  show("console-view");
});

$("reply-form").addEventListener("submit", event => {
  event.preventDefault();
  const text = $("reply").value.trim();
  if (!text || !current) return;
  const id = "m" + nextID++;
  pendingText.set(id, text);
  send({ type: "send", room: current, text, id });
  $("reply").value = "";
  touch();
});

$("reply").addEventListener("keydown", event => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("reply-form").requestSubmit(); }
});

$("reply").addEventListener("input", () => {
  const now = Date.now();
  if (current && now - lastTyping > 3000) { lastTyping = now; send({ type: "typing", room: current }); touch(); }
});

$("end-chat").addEventListener("click", () => {
  if (current && confirm("End this chat for the visitor too?")) { send({ type: "end", room: current, id: "e" + nextID++ }); touch(); }
});

$("logout").addEventListener("click", () => send({ type: "logout", id: "logout" }));

// The room list refreshes by itself; that is not activity and does not keep the session alive.
setInterval(() => { if (me) send({ type: "rooms", id: "rooms" }); }, 30000);
show("login-view");
