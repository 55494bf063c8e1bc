// CareHub staff console: the room list, reading and answering conversations, ending chats, and
// the front desk: availability, the team, claiming and transferring chats, canned replies and
// read receipts. The login, enrolment and lock screen are CareHubSession's (session.js).
//
// This browser remembers (localStorage) only choices: availability, sound and desktop
// notifications. No message text, note, patient name or room goes there.
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
const team = new Map();   // user -> { name, role, state }
let cannedReplies = [];   // [{ name, text }] from the `replies` frame
const readSent = new Map(); // room -> highest seq a `read` was sent for
const NOTE_LIMIT = 2000;  // bytes, as the hub counts them
const prefKey = what => `carehub.staff.${what}`;
const presenceKey = () => prefKey(`presence.${CareHubSession.me?.org}.${CareHubSession.me?.user}`);

function remember(key, value) {
  try { localStorage.setItem(key, value); } catch { /* private mode: nothing remembered */ }
}
function recall(key) {
  try { return localStorage.getItem(key); } catch { return null; }
}

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
        if (!(room.lastAt > entry.lastAt)) { Object.assign(room, progressOf(entry)); room.assignedTo = entry.assignedTo; }
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
      if (frame.room === current) { $("assign-form").elements.user.value = frame.user; $("room-note").textContent = `Assigned to ${frame.user}.`; renderHead(); }
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
      for (const entry of frame.history) addMessage(frame.room, entry.seq, entry.from, entry.text, entry.at, entry.fromName, entry.attachment);
      $("room-visitor").textContent = frame.visitor ? Object.entries(frame.visitor).map(([k, v]) => `${k}: ${v}`).join(" · ") : "";
      if (frame.handoff) { const room = rooms.get(frame.room); if (room) room.handoff = frame.handoff; }
      showHandoff(frame.room);
      setEnded(frame.room, frame.ended);
      markRead();
      break;
    case "message":
      // Unread counts of rooms not open come from room_activity.
      if (frame.room === current) addMessage(frame.room, frame.seq, frame.from, frame.text, frame.at, frame.fromName, frame.attachment);
      if (frame.room === current) { $("typing").textContent = ""; markRead(); }
      break;
    case "ack":
      if (frame.room === current) { addMessage(frame.room, frame.seq, me.user, pendingText.get(frame.id) || "", frame.at, nameOf(me.user)); markRead(); }
      pendingText.delete(frame.id);
      break;
    case "typing":
      if (frame.room === current) {
        $("typing").textContent = `${frame.fromName || (frame.from === "visitor" ? "The visitor" : frame.from)} is typing…`;
        clearTimeout(typingTimer);
        typingTimer = setTimeout(() => { $("typing").textContent = ""; }, 4000);
      }
      break;
    case "ended":
      setEnded(frame.room, true);
      break;
    case "attachment_ready":
      if (frame.room === current) for (const box of attachmentBoxes(frame.attachment)) CareHubAttachments.ready(box, fileSource);
      break;
    case "attachment_refused":
      if (frame.room === current) for (const box of attachmentBoxes(frame.attachment)) CareHubAttachments.refuse(box, frame.code);
      break;
    case "unsubscribed":
      // The hub took this console out of a room it may no longer read (reassigned, or the
      // organisation's settings changed): close it and drop it from the list.
      if (frame.reason === "access_changed") revokeRoom(frame.room);
      break;
    case "team":
      team.clear();
      for (const member of frame.members) team.set(member.user, { name: member.name || member.user, role: member.role, state: member.state });
      renderTeam();
      renderList();
      if (current) renderHead();
      break;
    case "presence":
      // Ours (the answer, or another of our sessions) and every colleague's changes.
      team.set(frame.user, { ...(team.get(frame.user) || {}), name: frame.name || frame.user, state: frame.state });
      if (me && frame.user === me.user) { $("presence").value = frame.state === "away" ? "away" : "available"; $("presence-note").textContent = ""; }
      renderTeam();
      break;
    case "claimed":
      if (rooms.has(frame.room)) { rooms.get(frame.room).assignedTo = frame.user; renderList(); }
      if (frame.room === current) { $("room-note").textContent = "You have taken this chat."; renderHead(); }
      else if (rooms.has(frame.room) && (frame.id || "").startsWith("claimL")) openRoom(frame.room);
      break;
    case "transferred":
      transferred(frame);
      break;
    case "replies":
      cannedReplies = Array.isArray(frame.replies) ? frame.replies : [];
      if (!$("replies-pop").hidden) filterReplies();
      break;
    case "error":
      if (frame.code === "conversation_ended") {
        setEnded(current, true);
      } else if ((frame.id || "").startsWith("claim")) {
        claimRefused(frame);
      } else if ((frame.id || "").startsWith("transfer")) {
        $("transfer-send").disabled = false;
        $("transfer-error").textContent = frame.code === "not_found" ? "That colleague's account is not in your organisation, or is disabled." : CareHubSession.explain(frame);
        if (!$("transfer-dialog").open) $("room-note").textContent = $("transfer-error").textContent;
      } else if ((frame.id || "").startsWith("presence")) {
        $("presence-note").textContent = `Your availability was not changed: ${CareHubSession.explain(frame)}`;
      } else if (frame.id === "replies") {
        cannedReplies = [];
        $("replies-hint").textContent = "Canned replies could not be loaded.";
      } else if ((frame.id || "").startsWith("read")) {
        console.warn("read receipt refused", frame.code);
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
  const progress = { lastAt: frame.lastAt, lastFrom: frame.lastFrom, waitingSince: frame.waitingSince, unanswered: frame.unanswered || 0 };
  if (frame.offline) progress.offline = true;
  return progress;
}

// A room moved: a new chat, a message, an end or an assignment. No text ever comes with it.
function activity(frame) {
  addRoom(frame.room, frame.startedAt, frame.ended, frame.assignedTo);
  const room = rooms.get(frame.room);
  Object.assign(room, progressOf(frame));
  // Activity names the assignee whenever there is one: none means the room is in the queue.
  room.assignedTo = frame.assignedTo;
  if (frame.room === current) renderHead();
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
  if (!("Notification" in window) || Notification.permission !== "granted" || !$("notify-on").checked) return;
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
  $("notify-choice").hidden = Notification.permission !== "granted";
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
    const claim = document.createElement("input");
    claim.type = "button";
    claim.className = "claim";
    claim.value = "I'll take it";
    claim.dataset.claim = id;
    claim.addEventListener("click", () => { claimRoom(id, "claimL"); });
    item.append(button, claim);
    room = { startedAt, ended, unread: 0, unanswered: 0, waitingSince: null, item, button, claim };
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
  if (room.ended) meta.push("ended");
  parts.push(line("meta", meta.join(" · ")));
  if (room.offline) parts.push(line("offline", "Left a message while closed"));
  if (room.assignedTo) parts.push(line("taken", `Taken by ${takenBy(room.assignedTo)}`));
  if (room.handedToMe && room.assignedTo === CareHubSession.me?.user) parts.push(line("handed", `Transferred to you by ${room.handoff?.fromName || room.handoff?.from || "a colleague"}`));
  const waiting = waitingText(room);
  if (waiting) parts.push(line("waiting", waiting));
  if (room.unread && id !== current) parts.push(line("unread", String(room.unread)));
  room.button.replaceChildren(...parts);
  // "I'll take it" for a room nobody has taken (an input, so the room's own button stays the
  // only <button> in its entry).
  room.claim.hidden = Boolean(room.ended || room.assignedTo);
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
  $("list-note").textContent = "";
  closeReplies();
  renderHead();
  showHandoff(id);
  $("assign-form").hidden = CareHubSession.me?.role !== "admin";
  $("assign-form").elements.user.value = room.assignedTo || "";
  $("messages").replaceChildren();
  send({ type: "subscribe", room: id, id: "s" + nextID++ });
  touch();
}

function addMessage(room, seq, from, text, at, fromName, attachment) {
  const shown = seen.get(room) || new Set();
  seen.set(room, shown);
  if (shown.has(seq)) return;
  shown.add(seq);
  const item = document.createElement("li");
  item.className = from === CareHubSession.me?.user ? "mine" : "theirs";
  const who = document.createElement("span");
  who.className = "from";
  who.textContent = from === "visitor" ? "Visitor" : fromName || nameOf(from);
  if (from !== "visitor" && (fromName || nameOf(from)) !== from) who.title = from;
  if (at) {
    const stamp = document.createElement("time");
    stamp.className = "at";
    stamp.dateTime = new Date(at).toISOString();
    stamp.textContent = when(at);
    who.append(" · ", stamp);
  }
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text === null && !attachment ? "(this message could not be decrypted)" : text || "";
  item.append(who, body);
  if (attachment) {
    const box = document.createElement("div");
    item.append(box);
    CareHubAttachments.show(box, attachment, fileSource);
  }
  const list = $("messages");
  const after = [...list.children].find(child => Number(child.dataset.seq) > seq);
  item.dataset.seq = seq;
  list.insertBefore(item, after || null);
  list.scrollTop = list.scrollHeight;
}

// ---- Files: the attach button, files dropped on the open room, attachments in messages -------

const fileSource = {
  url: id => `/attachments/${encodeURIComponent(id)}?org=${encodeURIComponent(CareHubSession.me?.org || "")}`,
  token: () => CareHubSession.me?.token || "",
};

function attachmentBoxes(id) {
  return [...$("messages").querySelectorAll(".carehub-attachment")].filter(box => box.dataset.attachment === id);
}

// Whether files may be sent to the open room now.
const canAttach = () => Boolean(current && CareHubSession.me?.token && !rooms.get(current)?.ended);

// Sends a file to the open room: a message of its own, shown with its progress until the hub
// has it; the hub's answer (or the room's message frame, whichever comes first) shows it.
function sendFile(file) {
  const room = current;
  const item = document.createElement("li");
  item.className = "mine sending";
  const who = document.createElement("span");
  who.className = "from";
  who.textContent = "Sending…";
  const box = document.createElement("div");
  box.className = "carehub-attachment carehub-sending";
  const name = document.createElement("span");
  name.className = "carehub-file-name";
  name.textContent = `${file.name} (${CareHubAttachments.sizeText(file.size)})`;
  box.append(name);
  const bar = CareHubAttachments.progressBar(file);
  if (bar) box.append(bar);
  item.append(who, box);
  $("messages").append(item);
  $("messages").scrollTop = $("messages").scrollHeight;
  const url = `/attachments?org=${encodeURIComponent(CareHubSession.me.org)}&room=${encodeURIComponent(room)}`;
  const progress = bar ? (sent, total) => { bar.value = Math.round(100 * sent / total); } : null;
  CareHubAttachments.upload({ url, token: CareHubSession.me.token, file, progress }).then(answer => {
    item.remove();
    const me = CareHubSession.me;
    if (room === current && me) addMessage(room, answer.seq, me.user, "", Date.now(), nameOf(me.user), answer.attachment);
    markRead();
  }, problem => {
    item.remove();
    if (problem.code === "conversation_ended") setEnded(room, true);
    if (room === current) $("room-note").textContent = `${file.name}: ${CareHubAttachments.sentence(problem.code, problem.limit)}`;
  });
  touch();
}

function takeFiles(files) {
  if (!canAttach()) return;
  for (const file of files) sendFile(file);
}

function attachControls() {
  $("attach").append(CareHubAttachments.clip());
  $("attach-file").accept = CareHubAttachments.accept;
  $("attach").addEventListener("click", () => { if (canAttach()) $("attach-file").click(); });
  $("attach-file").addEventListener("change", () => {
    const chosen = [...$("attach-file").files];
    $("attach-file").value = "";
    takeFiles(chosen);
    $("reply").focus();
  });
  CareHubAttachments.dropZone($("room-pane"), canAttach, takeFiles);
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
  $("room-empty").textContent = "That conversation was closed here: it is no longer yours to read (it was given to someone else, or your access changed).";
  if ($("transfer-dialog").open) $("transfer-dialog").close();
  closeReplies();
}

function setEnded(room, ended) {
  const entry = rooms.get(room);
  if (entry && ended) { entry.ended = true; entry.waitingSince = null; entry.unanswered = 0; renderList(); }
  if (room === current) {
    $("reply-row").hidden = ended;
    $("end-chat").hidden = ended;
    if (ended) closeReplies();
    renderHead();
    if (ended) $("typing").textContent = "This chat has ended.";
  }
}

function reset() {
  current = null;
  rooms.clear();
  seen.clear();
  team.clear();
  readSent.clear();
  cannedReplies = [];
  renderTeam();
  closeReplies();
  if ($("transfer-dialog").open) $("transfer-dialog").close();
  $("presence-control").hidden = true;
  $("presence-note").textContent = "";
  $("list-note").textContent = "";
  $("handoff").hidden = true;
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

// ---- The front desk --------------------------------------------------------------------------

// The name people know a colleague by: the display name from the team list, else the login.
function nameOf(user) {
  return team.get(user)?.name || user;
}

function takenBy(user) {
  return user === CareHubSession.me?.user ? "you" : nameOf(user);
}

const STATE_WORDS = { available: "available", away: "away", offline: "offline" };
const STATE_ORDER = { available: 0, away: 1, offline: 2 };

function byPresence([, a], [, b]) {
  return (STATE_ORDER[a.state] ?? 3) - (STATE_ORDER[b.state] ?? 3) || a.name.localeCompare(b.name);
}

// The team panel: everyone in the organisation, the available first, with their state.
function renderTeam() {
  const me = CareHubSession.me;
  const items = [...team.entries()].sort(byPresence).map(([user, member]) => {
    const item = document.createElement("li");
    item.className = member.state || "offline";
    item.dataset.user = user;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = member.name + (me && user === me.user ? " (you)" : "");
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = STATE_WORDS[member.state] || "offline";
    item.append(name, state);
    return item;
  });
  $("team").replaceChildren(...items);
  if ($("transfer-dialog").open) fillTransferChoices();
}

// The open room's header: who has it, and what this console may do with it.
function renderHead() {
  const room = current && rooms.get(current);
  if (!room) return;
  const mine = room.assignedTo && room.assignedTo === CareHubSession.me?.user;
  $("claim-room").hidden = Boolean(room.ended || mine);
  $("transfer-open").hidden = Boolean(room.ended);
  $("room-taken").textContent = room.assignedTo ? `Taken by ${takenBy(room.assignedTo)}.` : room.ended ? "" : "Waiting in the queue: nobody has taken it yet.";
}

function claimRoom(id, prefix) {
  if (!rooms.has(id)) return;
  send({ type: "claim", room: id, id: `${prefix}${nextID++}:${id}` });
  touch();
}

// "already taken by …" (a login or a display name): say who, by the name people know them by.
function claimRefused(frame) {
  const id = (frame.id || "").split(":").slice(1).join(":");
  const room = rooms.get(id);
  let sentence = CareHubSession.explain(frame);
  if (frame.code === "conflict") {
    const named = (frame.message || "").match(/taken by (.+?)\.?$/)?.[1]?.trim();
    const login = team.has(named) ? named : [...team.entries()].find(([, member]) => member.name === named)?.[0];
    const holder = login ? nameOf(login) : named || (room?.assignedTo && nameOf(room.assignedTo));
    sentence = holder ? `Already taken by ${holder}.` : "Already taken by a colleague.";
    if (room && login) { room.assignedTo = login; renderList(); }
  }
  if (id && id === current) { $("room-note").textContent = sentence; renderHead(); }
  else $("list-note").textContent = sentence;
}

// The answer to our own transfer, or a colleague handing a room to us.
function transferred(frame) {
  const me = CareHubSession.me;
  const room = rooms.get(frame.room);
  if (frame.from === undefined) {
    // Our transfer went through.
    $("transfer-send").disabled = false;
    if ($("transfer-dialog").open) $("transfer-dialog").close();
    if (room) { room.assignedTo = frame.to || undefined; room.handedToMe = false; renderList(); }
    if (frame.room === current) {
      $("room-note").textContent = frame.to ? `Transferred to ${nameOf(frame.to)}.` : "Put back in the queue.";
      renderHead();
    }
    return;
  }
  const handoff = { from: frame.from, fromName: frame.fromName, to: frame.to, note: frame.note, at: frame.at };
  if (!room) {
    // Not listed here yet: the room list brings it, and the note shows when it is opened.
    listVisitors();
    return;
  }
  room.handoff = handoff;
  room.assignedTo = frame.to;
  room.handedToMe = Boolean(me && frame.to === me.user);
  renderList();
  if (frame.room === current) { $("room-note").textContent = ""; showHandoff(frame.room); renderHead(); }
  if (room.handedToMe) alertStaff("A chat was transferred to you");
}

// "Transferred by NAME at TIME: note", prominently above the open room's messages.
function showHandoff(id) {
  const box = $("handoff");
  const handoff = rooms.get(id)?.handoff;
  if (!handoff || id !== current) { box.hidden = true; box.textContent = ""; return; }
  const me = CareHubSession.me;
  const by = handoff.fromName || nameOf(handoff.from);
  const to = handoff.to == null ? " to the queue" : handoff.to === me?.user ? "" : ` to ${nameOf(handoff.to)}`;
  const verb = handoff.to == null ? "Put back" : "Transferred";
  const at = handoff.at ? ` at ${when(handoff.at)}` : "";
  box.textContent = `${verb} by ${by}${to}${at}: ${handoff.note || "(no note)"}`;
  box.hidden = false;
  if (rooms.get(id)) rooms.get(id).handedToMe = false;
}

// Read receipts: the highest seq shown in the open room, while the page is visible, once per seq.
function markRead() {
  if (!current || document.visibilityState !== "visible") return;
  const shown = seen.get(current);
  if (!shown || shown.size === 0) return;
  const highest = Math.max(...shown);
  if (!(highest > (readSent.get(current) || 0))) return;
  readSent.set(current, highest);
  send({ type: "read", room: current, seq: highest, id: "read" + nextID++ });
}

// ---- Canned replies: "/" at the start of the reply box, or the Replies button ----------------

let repliesMode = null; // "slash" (filtered by what follows the /) or "button" (all)
let replyChoices = [];  // the replies listed now
let replyActive = -1;   // index of the highlighted one

function openReplies(mode) {
  repliesMode = mode;
  $("replies-pop").hidden = false;
  $("reply").setAttribute("aria-expanded", "true");
  filterReplies();
}

function closeReplies() {
  repliesMode = null;
  replyChoices = [];
  replyActive = -1;
  $("replies-pop").hidden = true;
  $("replies-list").replaceChildren();
  $("reply").setAttribute("aria-expanded", "false");
  $("reply").removeAttribute("aria-activedescendant");
}

function filterReplies() {
  const value = $("reply").value;
  const query = repliesMode === "slash" ? value.slice(1).split("\n")[0].trim().toLowerCase() : "";
  replyChoices = cannedReplies.filter(reply => !query || reply.name.toLowerCase().includes(query) || reply.text.toLowerCase().includes(query));
  replyChoices.sort((a, b) => Number(!a.name.toLowerCase().startsWith(query)) - Number(!b.name.toLowerCase().startsWith(query)));
  replyActive = replyChoices.length ? 0 : -1;
  $("replies-hint").textContent = cannedReplies.length === 0 ? "Your organisation has no canned replies yet."
    : replyChoices.length === 0 ? `No canned reply matches "${query}".`
    : "Canned replies: ↑ ↓ to choose, Enter or Tab to insert, Esc to close.";
  $("replies-list").replaceChildren(...replyChoices.map((reply, index) => {
    const item = document.createElement("li");
    item.id = `reply-option-${index}`;
    item.setAttribute("role", "option");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = reply.name;
    const preview = document.createElement("span");
    preview.className = "preview";
    preview.textContent = reply.text.length > 80 ? reply.text.slice(0, 80) + "…" : reply.text;
    item.append(name, preview);
    item.addEventListener("mousedown", event => event.preventDefault()); // keep the box focused
    item.addEventListener("click", () => insertReply(index));
    return item;
  }));
  highlightReply();
}

function highlightReply() {
  [...$("replies-list").children].forEach((item, index) => item.setAttribute("aria-selected", String(index === replyActive)));
  if (replyActive >= 0) {
    $("reply").setAttribute("aria-activedescendant", `reply-option-${replyActive}`);
    $(`reply-option-${replyActive}`).scrollIntoView({ block: "nearest" });
  } else {
    $("reply").removeAttribute("aria-activedescendant");
  }
}

// Keys while the list is open; true when the key was the list's.
function repliesKey(event) {
  if (event.key === "Escape") { event.preventDefault(); closeReplies(); return true; }
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    if (replyChoices.length) {
      const step = event.key === "ArrowDown" ? 1 : -1;
      replyActive = (replyActive + step + replyChoices.length) % replyChoices.length;
      highlightReply();
    }
    return true;
  }
  if ((event.key === "Enter" && !event.shiftKey) || (event.key === "Tab" && !event.shiftKey)) {
    if (replyActive < 0) { if (event.key === "Tab") closeReplies(); else { event.preventDefault(); } return event.key === "Enter"; }
    event.preventDefault();
    insertReply(replyActive);
    return true;
  }
  return false;
}

// The reply goes into the box, in place of "/name" (or at the cursor), for the nurse to edit.
function insertReply(index) {
  const reply = replyChoices[index];
  if (!reply) return;
  const box = $("reply");
  if (repliesMode === "slash" && box.value.startsWith("/")) {
    const rest = box.value.indexOf("\n");
    box.value = reply.text + (rest >= 0 ? box.value.slice(rest) : "");
    box.setSelectionRange(reply.text.length, reply.text.length);
  } else {
    const start = box.selectionStart ?? box.value.length;
    const end = box.selectionEnd ?? start;
    box.value = box.value.slice(0, start) + reply.text + box.value.slice(end);
    box.setSelectionRange(start + reply.text.length, start + reply.text.length);
  }
  closeReplies();
  box.focus();
  touch();
}

// ---- Transfer --------------------------------------------------------------------------------

function fillTransferChoices() {
  const me = CareHubSession.me;
  const select = $("transfer-to");
  const chosen = select.value;
  const colleagues = [...team.entries()].filter(([user]) => user !== me?.user).sort(byPresence);
  const options = colleagues.map(([user, member]) => {
    const option = document.createElement("option");
    option.value = user;
    option.textContent = `${member.name} (${STATE_WORDS[member.state] || "offline"})`;
    return option;
  });
  const queue = document.createElement("option");
  queue.value = "";
  queue.textContent = "Back to the queue";
  select.replaceChildren(...options, queue);
  if ([...select.options].some(option => option.value === chosen)) select.value = chosen;
}

function noteBytes() {
  return new TextEncoder().encode($("transfer-note").value).length;
}

function showNoteCount() {
  const bytes = noteBytes();
  $("transfer-count").textContent = bytes > NOTE_LIMIT ? `The note is too long: ${bytes} of at most ${NOTE_LIMIT} bytes. Shorten it.`
    : `${bytes} of ${NOTE_LIMIT} bytes.`;
}

function frontDeskControls() {
  $("presence").addEventListener("change", () => {
    const state = $("presence").value === "away" ? "away" : "available";
    remember(presenceKey(), state);
    send({ type: "presence", state, id: "presence" + nextID++ });
    touch();
  });
  $("claim-room").addEventListener("click", () => { if (current) claimRoom(current, "claimR"); });
  $("transfer-open").addEventListener("click", () => {
    if (!current) return;
    fillTransferChoices();
    $("transfer-note").value = "";
    $("transfer-error").textContent = "";
    $("transfer-send").disabled = false;
    showNoteCount();
    send({ type: "team", id: "team" }); // states as they are now
    $("transfer-dialog").showModal();
    $("transfer-to").focus();
  });
  $("transfer-cancel").addEventListener("click", () => $("transfer-dialog").close());
  $("transfer-note").addEventListener("input", showNoteCount);
  $("transfer-form").addEventListener("submit", event => {
    event.preventDefault();
    if (!current) { $("transfer-dialog").close(); return; }
    if (noteBytes() > NOTE_LIMIT) { $("transfer-error").textContent = `The note is too long (${noteBytes()} bytes; at most ${NOTE_LIMIT}). Shorten it and try again.`; return; }
    const to = $("transfer-to").value || null;
    const note = $("transfer-note").value.trim();
    const frame = { type: "transfer", room: current, to, id: `transfer${nextID++}:${current}` };
    if (note) frame.note = note;
    $("transfer-error").textContent = "";
    $("transfer-send").disabled = true;
    send(frame);
    touch();
  });
  $("replies-open").addEventListener("click", () => {
    if (repliesMode) { closeReplies(); return; }
    openReplies("button");
    $("reply").focus();
  });
  $("reply").addEventListener("blur", () => { if (repliesMode === "button") setTimeout(() => { if (document.activeElement !== $("reply") && document.activeElement !== $("replies-open")) closeReplies(); }, 0); });
  document.addEventListener("visibilitychange", markRead);
  // Sound and desktop notifications as last chosen on this browser.
  $("sound").checked = recall(prefKey("sound")) === "on";
  $("notify-on").checked = recall(prefKey("notify")) !== "off";
  $("sound").addEventListener("change", () => remember(prefKey("sound"), $("sound").checked ? "on" : "off"));
  $("notify-on").addEventListener("change", () => remember(prefKey("notify"), $("notify-on").checked ? "on" : "off"));
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
  if (!$("replies-pop").hidden && repliesKey(event)) return;
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("reply-form").requestSubmit(); }
});

$("reply").addEventListener("input", () => {
  // "/" at the start of the box looks for a canned reply by name.
  if ($("reply").value.startsWith("/")) openReplies("slash");
  else if (repliesMode === "slash") closeReplies();
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

frontDeskControls();
attachControls();

// The room list refreshes by itself; that is not activity and does not keep the session alive.
setInterval(() => { if (CareHubSession.me) send({ type: "rooms", id: "rooms" }); }, 30000);
// "waiting N min" moves on between frames.
setInterval(() => { if (rooms.size) renderList(); }, 20000);
CareHubSession.start({
  mainView: "console-view",
  name: "staff",
  onSession: me => {
    listVisitors();
    // Files need the session's bearer token (a hub without attachments gives none).
    $("attach").hidden = !me.token;
    // Availability as last chosen on this browser (the hub starts every login as available).
    const state = recall(presenceKey()) === "away" ? "away" : "available";
    $("presence").value = state;
    $("presence-control").hidden = false;
    send({ type: "presence", state, id: "presence" + nextID++ });
    send({ type: "team", id: "team" });
    send({ type: "replies", id: "replies" });
    if (me.role === "admin") send({ type: "admin", op: "users.list", id: "users" });
  },
  onFrame: receive,
  onLock: reset,
});
