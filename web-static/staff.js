// CareHub staff console: the room list, reading and answering conversations, ending chats. The
// login, enrolment and lock screen are CareHubSession's (session.js).
"use strict";
const $ = id => document.getElementById(id);
const send = frame => CareHubSession.send(frame);
const touch = () => CareHubSession.touch();

let current = null;     // the open room id
let nextID = 1;
const rooms = new Map(); // id -> { startedAt, ended, unread, item }
const seen = new Map();  // room -> Set of seqs shown
let typingTimer = null;
let lastTyping = 0;

function receive(frame) {
  const me = CareHubSession.me;
  switch (frame.type) {
    case "rooms":
      for (const entry of frame.rooms) addRoom(entry.room, entry.startedAt, entry.ended, entry.assignedTo);
      break;
    case "assigned":
      // To the admin who assigned, and to the assignee, whose room list now includes the room.
      if (rooms.has(frame.room)) { rooms.get(frame.room).assignedTo = frame.user; renderRoom(frame.room); }
      if (frame.room === current) { $("assign-form").elements.user.value = frame.user; $("room-note").textContent = `Assigned to ${frame.user}.`; }
      if (me && frame.user === me.user) send({ type: "rooms", id: "rooms" });
      break;
    case "admin":
      // An admin's console offers the organisation's staff as assignees.
      if (frame.op === "users.list") {
        $("staff-names").replaceChildren(...frame.result.users.filter(user => !user.disabled).map(user => {
          const option = document.createElement("option");
          option.value = user.user;
          return option;
        }));
      }
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
    case "unsubscribed":
      // The hub took this console out of a room it may no longer read (reassigned, or the
      // organisation's settings changed): close it and drop it from the list.
      if (frame.reason === "access_changed") revokeRoom(frame.room);
      break;
    case "error":
      if (frame.code === "conversation_ended") {
        setEnded(current, true);
      } else if ((frame.id || "").startsWith("assign")) {
        $("room-note").textContent = frame.message;
      } else {
        console.warn("hub error", frame);
      }
      break;
  }
}

const pendingText = new Map();

function addRoom(id, startedAt, ended, assignedTo) {
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
  if (assignedTo !== undefined) room.assignedTo = assignedTo;
  renderRoom(id);
}

function renderRoom(id) {
  const room = rooms.get(id);
  const time = new Date(room.startedAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  room.button.textContent = `Visitor ${id.slice(-6)} · ${time}${room.assignedTo ? " · " + room.assignedTo : ""}${room.ended ? " · ended" : ""}`;
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
  $("room-note").textContent = "";
  $("assign-form").hidden = CareHubSession.me?.role !== "admin";
  $("assign-form").elements.user.value = room.assignedTo || "";
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
  item.className = from === CareHubSession.me?.user ? "mine" : "theirs";
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

function revokeRoom(id) {
  const room = rooms.get(id);
  if (room) { room.item.remove(); rooms.delete(id); }
  seen.delete(id);
  if (id !== current) return;
  current = null;
  $("messages").replaceChildren();
  $("room-visitor").textContent = "";
  $("room-pane").hidden = true;
  $("room-empty").hidden = false;
  $("room-empty").textContent = "That conversation is no longer assigned to you.";
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

function reset() {
  current = null;
  rooms.clear();
  seen.clear();
  $("rooms").replaceChildren();
  $("messages").replaceChildren();
  $("room-visitor").textContent = "";
  $("room-note").textContent = "";
  $("room-pane").hidden = true;
  $("room-empty").hidden = false;
}

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

$("assign-form").addEventListener("submit", event => {
  event.preventDefault();
  const user = event.target.elements.user.value.trim();
  if (current && user) { send({ type: "assign", room: current, user, id: "assign" + nextID++ }); touch(); }
});

$("end-chat").addEventListener("click", () => {
  // The hub says what its end-of-chat hook does with the transcript (session and subscribed).
  const onEnd = CareHubSession.me?.onEnd?.text || "";
  if (current && confirm(`End this chat for the visitor too?\n\n${onEnd}`.trim())) { send({ type: "end", room: current, id: "e" + nextID++ }); touch(); }
});

// The room list refreshes by itself; that is not activity and does not keep the session alive.
setInterval(() => { if (CareHubSession.me) send({ type: "rooms", id: "rooms" }); }, 30000);
CareHubSession.start({
  mainView: "console-view",
  onSession: me => {
    send({ type: "rooms", id: "rooms" });
    if (me.role === "admin") send({ type: "admin", op: "users.list", id: "users" });
  },
  onFrame: receive,
  onLock: reset,
});
