// CareHub staff console: the room list, reading and answering conversations, ending chats. The
// login, enrolment and lock screen are CareHubSession's (session.js).
"use strict";
const $ = id => document.getElementById(id);
const send = frame => CareHubSession.send(frame);
const touch = () => CareHubSession.touch();

let current = null;     // the open room id
let nextID = 1;
// id -> { startedAt, ended, assignedTo, lastAt, lastFrom, waitingSince, unanswered, name, reason, unread, item, button }
const rooms = new Map();
const seen = new Map();  // room -> Set of seqs shown
let typingTimer = null;
let lastTyping = 0;
let orgName = "";        // the organisation's name as the room list gives it
let listPending = false; // a room list request is on its way
const TITLE = "CareHub staff";

function receive(frame) {
  const me = CareHubSession.me;
  switch (frame.type) {
    case "rooms": {
      // Only a list asked for with `visitors` names the visitors (a read on the record); the
      // periodic refresh does not, and keeps the names already shown.
      const named = frame.id === "visitors";
      if (named) listPending = false;
      if (frame.orgName) orgName = frame.orgName;
      for (const entry of frame.rooms) {
        addRoom(entry.room, entry.startedAt, entry.ended, entry.assignedTo);
        const room = rooms.get(entry.room);
        // A list read before a room_activity that arrived first is older than what it says.
        if (!(room.lastAt > entry.lastAt)) Object.assign(room, progressOf(entry));
        if (named) Object.assign(room, { name: entry.name, reason: entry.reason, listed: true });
      }
      renderList();
      break;
    }
    case "room_activity":
      activity(frame);
      break;
    case "assigned":
      // To the admin who assigned, and to the assignee, whose room list now includes the room.
      if (rooms.has(frame.room)) { rooms.get(frame.room).assignedTo = frame.user; renderRoom(frame.room); }
      if (frame.room === current) { $("assign-form").elements.user.value = frame.user; $("room-note").textContent = `Assigned to ${frame.user}.`; }
      if (me && frame.user === me.user) listVisitors();
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
      for (const entry of frame.history) addMessage(frame.room, entry.seq, entry.from, entry.text, entry.at);
      $("room-visitor").textContent = frame.visitor ? Object.entries(frame.visitor).map(([k, v]) => `${k}: ${v}`).join(" · ") : "";
      setEnded(frame.room, frame.ended);
      break;
    case "message":
      // Unread counts of rooms not open come from room_activity.
      if (frame.room === current) addMessage(frame.room, frame.seq, frame.from, frame.text, frame.at);
      if (frame.room === current) $("typing").textContent = "";
      break;
    case "ack":
      if (frame.room === current) addMessage(frame.room, frame.seq, me.user, pendingText.get(frame.id) || "", frame.at);
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

// What the list shows of a room's traffic (room_activity and the rooms reply carry the same fields).
function progressOf(frame) {
  return { lastAt: frame.lastAt, lastFrom: frame.lastFrom, waitingSince: frame.waitingSince, unanswered: frame.unanswered || 0 };
}

// A room moved: a new chat, a message, an end or an assignment. No text ever comes with it.
function activity(frame) {
  addRoom(frame.room, frame.startedAt, frame.ended, frame.assignedTo);
  const room = rooms.get(frame.room);
  Object.assign(room, progressOf(frame));
  const elsewhere = frame.room !== current || document.hidden;
  if (frame.event === "message" && frame.room !== current) room.unread += 1;
  // The visitor's name and reason come with the room list; ask for it when a room is new here.
  if (!room.listed) listVisitors();
  renderList();
  if (frame.event === "opened") alertStaff("New chat");
  else if (frame.event === "message" && frame.lastFrom === "visitor" && elsewhere) alertStaff("New message");
}

// The room list with each visitor's name and reason, once at a time.
function listVisitors() {
  if (listPending) return;
  listPending = true;
  send({ type: "rooms", id: "visitors", visitors: true });
}

// A beep (if chosen) and a desktop notification (if allowed) naming only the organisation.
function alertStaff(what) {
  if ($("sound").checked) beep();
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const title = `${what} at ${orgName || CareHubSession.me?.org || "your organisation"}`;
  try { new Notification(title, { tag: "carehub", body: "Open the staff console to read it." }); } catch (error) { console.warn("notification", error); }
}

let audio = null;
function beep() {
  try {
    audio = audio || new AudioContext();
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.value = 0.08;
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.15);
  } catch (error) { console.warn("sound", error); }
}

function notificationState() {
  const button = $("notify-allow");
  if (!("Notification" in window)) { button.hidden = true; $("notify-state").textContent = "This browser shows no desktop notifications."; return; }
  button.hidden = Notification.permission !== "default";
  $("notify-state").textContent = Notification.permission === "granted" ? "Desktop notifications on."
    : Notification.permission === "denied" ? "Desktop notifications are blocked in this browser." : "";
}

// "14:03" today, "3 Mar, 14:03" on other days.
function when(ms) {
  const date = new Date(ms);
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return date.toDateString() === new Date().toDateString() ? time : `${date.toLocaleDateString([], { day: "numeric", month: "short" })}, ${time}`;
}

function waitingText(room) {
  if (room.ended || room.waitingSince == null) return "";
  const minutes = Math.floor((Date.now() - room.waitingSince) / 60000);
  return minutes < 1 ? "needs a reply" : `waiting ${minutes} min`;
}

function label(id) {
  const room = rooms.get(id);
  return room && room.name ? room.name : `Visitor ${id.slice(-6)}`;
}

// Open chats: whoever has waited longest first, then the most recently active; ended chats apart.
function renderList() {
  const open = [...rooms.entries()].filter(([, room]) => !room.ended);
  const ended = [...rooms.entries()].filter(([, room]) => room.ended);
  open.sort(([, a], [, b]) => (a.waitingSince ?? Infinity) - (b.waitingSince ?? Infinity) || (b.lastAt ?? b.startedAt) - (a.lastAt ?? a.startedAt));
  ended.sort(([, a], [, b]) => (b.lastAt ?? b.startedAt) - (a.lastAt ?? a.startedAt));
  for (const [id] of rooms) renderRoom(id);
  $("rooms").replaceChildren(...open.map(([, room]) => room.item));
  $("rooms-ended").replaceChildren(...ended.map(([, room]) => room.item));
  $("ended-heading").hidden = ended.length === 0;
  const waiting = open.filter(([, room]) => room.waitingSince != null).length;
  document.title = waiting ? `(${waiting}) ${TITLE}` : TITLE;
}

function addRoom(id, startedAt, ended, assignedTo) {
  let room = rooms.get(id);
  if (!room) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.room = id;
    button.addEventListener("click", () => openRoom(id));
    item.appendChild(button);
    room = { startedAt, ended, unread: 0, unanswered: 0, waitingSince: null, item, button };
    rooms.set(id, room);
    $("rooms").prepend(item);
  }
  room.ended = room.ended || ended;
  if (assignedTo !== undefined) room.assignedTo = assignedTo;
  renderRoom(id);
}

function renderRoom(id) {
  const room = rooms.get(id);
  const line = (className, text) => {
    const span = document.createElement("span");
    span.className = className;
    span.textContent = text;
    return span;
  };
  const parts = [line("who", label(id))];
  if (room.reason) parts.push(line("reason", room.reason));
  const meta = [`started ${when(room.startedAt)}`];
  if (room.assignedTo) meta.push(room.assignedTo);
  if (room.ended) meta.push("ended");
  parts.push(line("meta", meta.join(" · ")));
  const waiting = waitingText(room);
  if (waiting) parts.push(line("waiting", waiting));
  if (room.unread && id !== current) parts.push(line("unread", String(room.unread)));
  room.button.replaceChildren(...parts);
  room.item.classList.toggle("ended", room.ended);
  room.item.classList.toggle("waiting", Boolean(waiting));
  room.button.classList.toggle("active", id === current);
}

function openRoom(id) {
  if (current && current !== id) send({ type: "unsubscribe", room: current, id: "u" + nextID++ });
  current = id;
  const room = rooms.get(id);
  room.unread = 0;
  renderList();
  $("room-empty").hidden = true;
  $("room-pane").hidden = false;
  $("room-title").textContent = label(id);
  $("room-note").textContent = "";
  $("assign-form").hidden = CareHubSession.me?.role !== "admin";
  $("assign-form").elements.user.value = room.assignedTo || "";
  $("messages").replaceChildren();
  send({ type: "subscribe", room: id, id: "s" + nextID++ });
  touch();
}

function addMessage(room, seq, from, text, at) {
  const shown = seen.get(room) || new Set();
  seen.set(room, shown);
  if (shown.has(seq)) return;
  shown.add(seq);
  const item = document.createElement("li");
  item.className = from === CareHubSession.me?.user ? "mine" : "theirs";
  const who = document.createElement("span");
  who.className = "from";
  who.textContent = from === "visitor" ? "Visitor" : from;
  if (at) {
    const stamp = document.createElement("time");
    stamp.className = "at";
    stamp.dateTime = new Date(at).toISOString();
    stamp.textContent = when(at);
    who.append(" · ", stamp);
  }
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
  renderList();
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
  if (entry && ended) { entry.ended = true; entry.waitingSince = null; entry.unanswered = 0; renderList(); }
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
  listPending = false;
  $("rooms").replaceChildren();
  $("rooms-ended").replaceChildren();
  $("ended-heading").hidden = true;
  document.title = TITLE;
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

$("notify-allow").addEventListener("click", () => {
  if ("Notification" in window) Notification.requestPermission().then(notificationState, notificationState);
});
notificationState();

// The room list refreshes by itself; that is not activity and does not keep the session alive.
setInterval(() => { if (CareHubSession.me) send({ type: "rooms", id: "rooms" }); }, 30000);
// "waiting N min" moves on between frames.
setInterval(() => { if (rooms.size) renderList(); }, 20000);
CareHubSession.start({
  mainView: "console-view",
  onSession: me => {
    listVisitors();
    if (me.role === "admin") send({ type: "admin", op: "users.list", id: "users" });
  },
  onFrame: receive,
  onLock: reset,
});
