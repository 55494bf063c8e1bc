// CareHub admin console: the organisation's pipeline (edited as text, checked as you type, with
// the hub's errors shown on their lines), the stage chain in force, the HIPAA switch with its BAA
// attestation, users and roles, canned replies, integration tokens, and the audit log with its verification. Everything goes through
// the admin API (docs/PROTOCOL.md); login and the lock screen are CareHubSession's (session.js).
"use strict";
const $ = id => document.getElementById(id);
let nextID = 1;
let pipeline = null;     // the last pipeline.get result
let checkTimer = null;
let oldestAudit = null;  // id of the oldest event shown, for paging
const SECTIONS = ["pipeline-section", "hipaa-section", "users-section", "replies-section", "tokens-section", "audit-section"];

function admin(op, fields = {}) {
  const id = `${op}#${nextID++}`;
  CareHubSession.send({ type: "admin", op, id, ...fields });
  CareHubSession.touch();
  return id;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function status(id, text, ok) {
  $(id).textContent = text;
  $(id).classList.toggle("ok", ok === true);
  $(id).classList.toggle("error", ok === false);
}

// Replies are matched to their operation by the id's prefix.
// What an account change did, told to the admin in its own words. The hub ends the sessions a
// change revokes before it answers.
const userDone = {
  "users.disable": "Done. The account can no longer log in; its live sessions have ended.",
  "users.enable": "Done. The account can log in again.",
  "users.set_role": "Done. The new role applies from their next login; any live sessions have ended.",
  "users.reset_2fa": "Done. Their live sessions have ended; they set up their authenticator again at their next login.",
  "users.unlock": "Done. They can try to log in again.",
};

function receive(frame) {
  const op = frame.type === "admin" ? frame.op : (frame.id || "").split("#")[0];
  if (frame.type === "error") return failed(op, frame);
  if (frame.type !== "admin") return;
  switch (op) {
    case "pipeline.get":
    case "pipeline.replace":
    case "hipaa.enable":
    case "hipaa.disable": {
      const wasEdit = op !== "pipeline.get";
      showPipeline(frame.result, true);
      if (op === "pipeline.replace") status("pipeline-status", `Saved and in force. The previous version is kept on the host as ${frame.result.versions[0] || "a copy"}.`, true);
      if (op === "hipaa.enable") status("hipaa-status", "HIPAA mode is on. Everyone in the organisation logs in again.", true);
      if (op === "hipaa.disable") status("hipaa-status", "HIPAA mode is off.", true);
      if (wasEdit) refreshAudit();
      break;
    }
    case "pipeline.check":
      showIssues([]);
      drawChain(frame.result.stages);
      status("pipeline-status", "No problems found. Not saved yet.", null);
      break;
    case "users.list":
    case "users.add":
    case "users.disable":
    case "users.enable":
    case "users.set_role":
    case "users.reset_2fa":
    case "users.unlock":
      showUsers(frame.result.users);
      if (op === "users.add") { $("user-add-form").reset(); status("users-status", "User added. They set up their authenticator at their first login.", true); }
      else if (op !== "users.list") status("users-status", userDone[op], true);
      if (op !== "users.list") refreshAudit();
      break;
    case "replies.list":
    case "replies.set":
    case "replies.delete":
      showReplies(frame.result.replies);
      if (op === "replies.set") { status("replies-status", editingReply ? `Saved the changes to “${editingReply}”.` : "Reply added.", true); editReply(null); }
      if (op === "replies.delete") status("replies-status", "Reply deleted.", true);
      if (op !== "replies.list") refreshAudit();
      break;
    case "tokens.list":
      showTokens(frame.result);
      break;
    case "tokens.create":
    case "tokens.approve":
    case "tokens.revoke":
      tokenDone(op, frame.result.token, frame.result.secret);
      admin("tokens.list");
      refreshAudit();
      break;
    case "audit.list":
      showAudit(frame.result, frame.id.startsWith("audit.list#more"));
      break;
    case "audit.verify":
      status("audit-verdict", frame.result.holds
        ? `The chain holds: ${frame.result.events} events of this organisation, each covered by a signed head.`
        : `The chain is broken${frame.result.brokenAt ? ` at event ${frame.result.brokenAt}` : ""}: ${frame.result.reason || frame.result.message}.`, frame.result.holds);
      break;
  }
}

function failed(op, frame) {
  if (frame.code === "forbidden" && !pipeline && op === "pipeline.get") {
    $("not-admin").textContent = `This console is for admins. ${frame.message}`;
    $("not-admin").hidden = false;
    for (const id of SECTIONS) $(id).hidden = true;
    return;
  }
  if (op === "pipeline.check" || op === "pipeline.replace") {
    showIssues(frame.issues || [{ line: 0, message: frame.message }]);
    const verb = op === "pipeline.replace" ? "Not saved: " : "";
    status("pipeline-status", verb + (frame.code === "conflict" ? frame.message : "fix the problems listed above."), false);
  } else if (op.startsWith("hipaa.")) {
    status("hipaa-status", frame.issues ? "Refused. The pipeline does not meet the HIPAA floor yet:" : frame.message, false);
    if (frame.issues) showIssues(frame.issues);
  } else if (op.startsWith("users.")) {
    status("users-status", frame.message, false);
  } else if (op.startsWith("replies.")) {
    status("replies-status", replyError(frame), false);
  } else if (op.startsWith("tokens.")) {
    tokenFailed(op, frame);
  } else if (op.startsWith("audit.")) {
    status("audit-verdict", frame.message, false);
  } else {
    console.warn("hub error", frame);
  }
}

// MARK: Pipeline

function showPipeline(result, replaceText) {
  pipeline = result;
  if (replaceText) $("pipeline-text").value = result.text;
  drawGutter([]);
  showIssues([]);
  drawChain(result.stages);
  $("hipaa-badge").textContent = result.hipaa ? "HIPAA mode" : "";
  $("pipeline-drift").hidden = result.inForce;
  $("versions").replaceChildren(...result.versions.map(name => element("li", name)));
  showHIPAA(result);
}

function drawChain(stages) {
  $("chain").replaceChildren(...stages.map(stage => {
    const item = element("li", undefined, "stage");
    item.dataset.stage = stage.name;
    item.append(element("strong", stage.name), element("span", stage.parameters.join(" "), "parameters"));
    return item;
  }));
}

function drawGutter(issues) {
  const marked = new Set(issues.map(issue => issue.line));
  const count = $("pipeline-text").value.split("\n").length;
  const lines = [];
  for (let line = 1; line <= count; line++) lines.push(marked.has(line) ? `! ${line}` : `${line}`);
  $("gutter").textContent = lines.join("\n");
  $("gutter").classList.toggle("has-issues", marked.size > 0);
}

function showIssues(issues) {
  $("pipeline-issues").replaceChildren(...issues.map(issue => {
    const item = element("li", issue.line > 0 ? `Line ${issue.line}: ${issue.message}` : issue.message);
    item.dataset.line = issue.line;
    item.addEventListener("click", () => selectLine(issue.line));
    return item;
  }));
  drawGutter(issues);
}

function selectLine(line) {
  const text = $("pipeline-text");
  const lines = text.value.split("\n");
  if (line < 1 || line > lines.length) return;
  const start = lines.slice(0, line - 1).reduce((sum, l) => sum + l.length + 1, 0);
  text.focus();
  text.setSelectionRange(start, start + lines[line - 1].length);
}

$("pipeline-text").addEventListener("input", () => {
  drawGutter([]);
  status("pipeline-status", "Checking…", null);
  clearTimeout(checkTimer);
  checkTimer = setTimeout(() => admin("pipeline.check", { text: $("pipeline-text").value }), 500);
});
$("pipeline-text").addEventListener("scroll", () => { $("gutter").scrollTop = $("pipeline-text").scrollTop; });
$("pipeline-save").addEventListener("click", () => {
  clearTimeout(checkTimer);
  status("pipeline-status", "Saving…", null);
  admin("pipeline.replace", { text: $("pipeline-text").value, base: pipeline.version });
});
$("pipeline-revert").addEventListener("click", () => { admin("pipeline.get"); status("pipeline-status", "", null); });

// MARK: HIPAA

function showHIPAA(result) {
  $("hipaa-state").textContent = result.hipaa
    ? `HIPAA mode is on for ${result.name}.`
    : `HIPAA mode is off for ${result.name}.`;
  const attestation = result.attestation;
  $("attestation").textContent = attestation
    ? `BAA on record: signed ${attestation.baaSignedOn}; privacy officer ${attestation.privacyOfficer} <${attestation.privacyOfficerEmail}>; recorded by ${attestation.recordedBy} on ${new Date(attestation.recordedAt).toLocaleString()}.`
    : "No BAA attestation on record.";
  $("hipaa-on-form").hidden = result.hipaa;
  $("hipaa-off-form").hidden = !result.hipaa;
  $("hipaa-off-form").elements.purge.closest("label").hidden = result.conversations === 0;
  $("hipaa-off-form").elements.purge.checked = false;
  $("hipaa-off-note").textContent = result.conversations > 0
    ? `The organisation holds ${result.conversations} conversation${result.conversations === 1 ? "" : "s"} kept under HIPAA rules. Switching off needs them purged first.`
    : "The organisation holds no conversations.";
}

$("hipaa-on-form").addEventListener("submit", event => {
  event.preventDefault();
  const form = event.target.elements;
  status("hipaa-status", "Switching…", null);
  admin("hipaa.enable", { baaSignedOn: form.baaSignedOn.value, privacyOfficer: form.privacyOfficer.value.trim(), privacyOfficerEmail: form.privacyOfficerEmail.value.trim() });
});
$("hipaa-off-form").addEventListener("submit", event => {
  event.preventDefault();
  const purge = event.target.elements.purge.checked;
  if (purge && !confirm(`Purge all ${pipeline.conversations} conversations now? They cannot be recovered.`)) return;
  admin("hipaa.disable", { purge });
});

// MARK: Users

function showUsers(users) {
  const me = CareHubSession.me;
  $("users").tBodies[0].replaceChildren(...users.map(user => {
    const row = document.createElement("tr");
    row.dataset.user = user.user;
    const role = element("select");
    role.setAttribute("aria-label", `Role of ${user.user}`);
    for (const name of ["staff", "admin"]) { const option = element("option", name); option.selected = user.role === name; role.append(option); }
    role.disabled = me && user.user === me.user;
    role.addEventListener("change", () => admin("users.set_role", { user: user.user, role: role.value }));
    const state = [user.disabled ? "disabled" : "active", user.locked ? "locked" : ""].filter(Boolean).join(", ");
    const actions = element("td");
    const action = (label, op) => {
      const button = element("button", label, "secondary");
      button.type = "button";
      button.addEventListener("click", () => admin(op, { user: user.user }));
      actions.append(button);
    };
    if (!(me && user.user === me.user)) action(user.disabled ? "Enable" : "Disable", user.disabled ? "users.enable" : "users.disable");
    if (user.twoFactor) action("Reset 2FA", "users.reset_2fa");
    if (user.locked) action("Unlock", "users.unlock");
    const roleCell = element("td");
    roleCell.append(role);
    row.append(element("td", user.user), roleCell, element("td", user.twoFactor ? "enrolled" : "not enrolled"), element("td", state), actions);
    return row;
  }));
}

$("user-add-form").addEventListener("submit", event => {
  event.preventDefault();
  const form = event.target.elements;
  admin("users.add", { user: form.user.value.trim(), role: form.role.value, password: form.password.value });
});

// MARK: Canned replies

const MAX_REPLY_BYTES = 2000;
let editingReply = null;  // the name of the reply being edited, or null when adding

function showReplies(replies) {
  $("replies").tBodies[0].replaceChildren(...replies.map(reply => {
    const row = document.createElement("tr");
    row.dataset.name = reply.name;
    const actions = element("td");
    const edit = element("button", "Edit", "secondary");
    edit.type = "button";
    edit.addEventListener("click", () => editReply(reply));
    const remove = element("button", "Delete", "secondary danger");
    remove.type = "button";
    remove.addEventListener("click", () => {
      if (!confirm(`Delete the canned reply “${reply.name}”? Staff will no longer be able to insert it.`)) return;
      status("replies-status", "Deleting…", null);
      admin("replies.delete", { name: reply.name });
    });
    actions.append(edit, remove);
    row.append(element("td", reply.name, "name"), element("td", reply.text, "text"), actions);
    return row;
  }));
  $("replies-empty").hidden = replies.length > 0;
}

// Editing keeps the name: saving under a name replaces that reply's text.
function editReply(reply) {
  const form = $("canned-form").elements;
  editingReply = reply ? reply.name : null;
  form.name.value = reply ? reply.name : "";
  form.text.value = reply ? reply.text : "";
  form.name.readOnly = reply !== null;
  $("canned-save").textContent = reply ? "Save changes" : "Add reply";
  $("canned-cancel").hidden = reply === null;
  countReplyBytes();
  if (reply) form.text.focus();
}

function countReplyBytes() {
  const bytes = new TextEncoder().encode($("canned-form").elements.text.value).length;
  $("canned-bytes").textContent = `${bytes.toLocaleString("en-US")} of 2,000 bytes`;
  $("canned-bytes").classList.toggle("error", bytes > MAX_REPLY_BYTES);
}

function replyError(frame) {
  const message = frame.message || "";
  if (frame.code === "conflict") return "This organisation already has 200 canned replies, the most it can keep. Delete one before adding another.";
  if (frame.code === "not_found") return "That reply is not there any more; another admin may have deleted it.";
  if (frame.code === "invalid_field" && message.includes("'name'")) return "Give the reply a name of 1 to 40 characters, on one line.";
  if (frame.code === "invalid_field" && message.includes("longer than")) return `The text is too long: at most 2,000 bytes (accented letters and emoji take more than one).`;
  if (frame.code === "invalid_field" && message.includes("'text'")) return "Write the text of the reply.";
  return `Not saved: ${message}`;
}

$("canned-form").elements.text.addEventListener("input", countReplyBytes);
$("canned-cancel").addEventListener("click", () => { editReply(null); status("replies-status", "", null); });
$("canned-form").addEventListener("submit", event => {
  event.preventDefault();
  const form = event.target.elements;
  const bytes = new TextEncoder().encode(form.text.value).length;
  if (bytes > MAX_REPLY_BYTES) return status("replies-status", replyError({ code: "invalid_field", message: "longer than" }), false);
  status("replies-status", "Saving…", null);
  admin("replies.set", { name: form.name.value, text: form.text.value });
});

// MARK: Integration tokens

const STATE_WORDS = { active: "Active", awaiting_approval: "Awaiting approval", revoked: "Revoked" };
const RISK_WORDS = {
  low: "Low risk (organisation information, staff names, queue figures)",
  medium: "Medium risk (the conversation list and state, the audit log)",
  high: "High risk: patient data, and accounts that can read it (an admin approves every token with one of these)",
};
let approving = null;  // the token whose maker confirms the approval with a code

function when(millis) { return new Date(millis).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" }); }

function showTokens(result) {
  const me = CareHubSession.me;
  $("tokens").tBodies[0].replaceChildren(...result.tokens.map(token => {
    const row = document.createElement("tr");
    row.dataset.token = token.id;
    const state = STATE_WORDS[token.state] + (token.expired ? " (expired)" : "");
    const decided = token.decidedBy ? `${token.decidedBy}, ${when(token.decidedAt)}` : "";
    const actions = element("td");
    if (token.state === "awaiting_approval") {
      const approve = element("button", "Approve", "secondary");
      approve.type = "button";
      approve.setAttribute("aria-label", `Approve token ${token.id} of ${token.integration}`);
      approve.addEventListener("click", () => {
        if (me && token.createdBy === me.user) return approveToken(token);
        status("tokens-status", "Approving…", null);
        admin("tokens.approve", { token: token.id });
      });
      actions.append(approve);
    }
    if (token.state !== "revoked") {
      const revoke = element("button", "Revoke", "secondary danger");
      revoke.type = "button";
      revoke.setAttribute("aria-label", `Revoke token ${token.id} of ${token.integration}`);
      revoke.addEventListener("click", () => {
        if (!confirm(`Revoke token ${token.id} of ${token.integration}? It stops working at once, for good.`)) return;
        status("tokens-status", "Revoking…", null);
        admin("tokens.revoke", { token: token.id });
      });
      actions.append(revoke);
    }
    row.append(
      element("td", token.id, "id"), element("td", token.integration), element("td", state, "state"), element("td", token.risk, "risk"),
      element("td", token.scopes.join(", ")), element("td", when(token.expiresAt)),
      element("td", token.allowFrom.length ? token.allowFrom.join(", ") : "any address"),
      element("td", `${token.createdBy}, ${when(token.createdAt)}`), element("td", decided), actions);
    return row;
  }));
  $("tokens-empty").hidden = result.tokens.length > 0;
  showTokenChoices(result);
}

// The integration picker lists the organisation's type=api integrations; the scope checkboxes are
// made once, grouped by risk, so that a refreshed list keeps what the admin ticked.
function showTokenChoices(result) {
  const form = $("token-form").elements;
  const select = form.integrationChoice;
  const chosen = select.value;
  select.replaceChildren(...result.integrations.map(integration => {
    const option = element("option", result.hipaa && !integration.baa ? `${integration.name} (no BAA: low and medium risk only)` : integration.name);
    option.value = integration.name;
    option.selected = integration.name === chosen;
    return option;
  }));
  const listed = result.integrations.length > 0;
  $("token-integration-choice").hidden = !listed;
  $("token-integration-text").hidden = listed;
  $("token-integration-none").hidden = listed;
  const scopes = $("token-scopes");
  if (scopes.querySelector("input")) return;
  for (const risk of ["low", "medium", "high"]) {
    const group = element("fieldset", undefined, `risk-${risk}`);
    group.append(element("legend", RISK_WORDS[risk]));
    for (const scope of result.scopes.filter(scope => scope.risk === risk)) {
      const label = element("label", undefined, "inline");
      const box = element("input");
      box.type = "checkbox";
      box.name = "scope";
      box.value = scope.scope;
      label.append(box, ` ${scope.scope}`);
      group.append(label);
    }
    scopes.append(group);
  }
}

function tokenDone(op, token, secret) {
  if (op === "tokens.create") {
    $("token-form").reset();
    for (const box of $("token-scopes").querySelectorAll("input")) box.checked = false;
    showSecret(secret);
    status("tokens-status", token.state === "awaiting_approval"
      ? `Made token ${token.id} for ${token.integration}. It reaches patient data, so it does nothing until an admin approves it.`
      : `Made token ${token.id} for ${token.integration}. It works now.`, true);
  } else if (op === "tokens.approve") {
    approveToken(null);
    status("tokens-status", `Approved token ${token.id}: it works now.`, true);
  } else {
    status("tokens-status", `Revoked token ${token.id}. It no longer works.`, true);
  }
}

function tokenFailed(op, frame) {
  if (op === "tokens.approve" && approving && (frame.code === "auth_failed" || frame.code === "rate_limited")) {
    const form = $("token-approve-form").elements;
    form.totp.value = "";
    form.totp.focus();
    return status("tokens-status", frame.code === "auth_failed"
      ? `Not approved: ${frame.message}. Enter the code your authenticator shows now.` : `Not approved: ${frame.message}.`, false);
  }
  const verb = { "tokens.create": "Not made", "tokens.approve": "Not approved", "tokens.revoke": "Not revoked" }[op] || "Refused";
  status("tokens-status", `${verb}: ${frame.message}`, false);
}

function showSecret(secret) {
  $("token-secret-value").value = secret;
  $("token-secret").hidden = false;
  status("token-secret-status", "", null);
  $("token-secret-value").focus();
  $("token-secret-value").select();
}

function hideSecret() {
  $("token-secret-value").value = "";
  $("token-secret").hidden = true;
}

// The token's maker confirms with a current code of their own authenticator; null hides the form.
function approveToken(token) {
  approving = token;
  const form = $("token-approve-form");
  form.reset();
  form.hidden = token === null;
  if (!token) return;
  $("token-approve-note").textContent = `You made token ${token.id} of ${token.integration}. To approve it yourself, confirm with the code your authenticator shows now (or ask another admin to approve it).`;
  form.elements.totp.focus();
}

$("token-approve-form").addEventListener("submit", event => {
  event.preventDefault();
  status("tokens-status", "Approving…", null);
  admin("tokens.approve", { token: approving.id, totp: event.target.elements.totp.value.replace(/\s/g, "") });
});
$("token-approve-cancel").addEventListener("click", () => approveToken(null));

$("token-secret-copy").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("token-secret-value").value);
    status("token-secret-status", "Copied.", true);
  } catch {
    $("token-secret-value").select();
    status("token-secret-status", "The browser did not allow copying; the secret is selected, press Ctrl+C (⌘C).", false);
  }
});
$("token-secret-done").addEventListener("click", hideSecret);

$("token-form").addEventListener("submit", event => {
  event.preventDefault();
  const form = event.target.elements;
  const integration = $("token-integration-choice").hidden ? form.integrationName.value.trim() : form.integrationChoice.value;
  const scopes = [...$("token-scopes").querySelectorAll("input:checked")].map(box => box.value);
  if (!integration) return status("tokens-status", "Choose the integration the token is for.", false);
  if (!scopes.length) return status("tokens-status", "Tick at least one scope.", false);
  const allow = form.allowFrom.value.split(",").map(part => part.trim()).filter(Boolean);
  const fields = { integration, scopes, expiresDays: Number(form.expiresDays.value) };
  if (allow.length) fields.allowFrom = allow;
  hideSecret();
  status("tokens-status", "Making the token…", null);
  admin("tokens.create", fields);
});

// MARK: Audit

function refreshAudit() {
  oldestAudit = null;
  admin("audit.list", { limit: 100 });
}

function showAudit(result, append) {
  const rows = result.events.map(event => {
    const row = document.createElement("tr");
    row.append(
      element("td", event.id), element("td", new Date(event.at).toLocaleString()), element("td", event.actor),
      element("td", event.address), element("td", event.action), element("td", event.target), element("td", event.detail));
    return row;
  });
  const body = $("audit").tBodies[0];
  if (append) body.append(...rows); else body.replaceChildren(...rows);
  if (result.events.length) oldestAudit = result.events[result.events.length - 1].id;
  $("audit-more").hidden = !result.more;
}

$("audit-verify").addEventListener("click", () => { status("audit-verdict", "Verifying…", null); admin("audit.verify"); });
$("audit-refresh").addEventListener("click", refreshAudit);
$("audit-more").addEventListener("click", () => {
  const id = `audit.list#more${nextID++}`;
  CareHubSession.send({ type: "admin", op: "audit.list", id, limit: 100, before: oldestAudit });
});

// MARK: Session

function reset() {
  pipeline = null;
  clearTimeout(checkTimer);
  $("pipeline-text").value = "";
  for (const id of ["chain", "pipeline-issues", "versions"]) $(id).replaceChildren();
  $("users").tBodies[0].replaceChildren();
  $("audit").tBodies[0].replaceChildren();
  $("replies").tBodies[0].replaceChildren();
  editReply(null);
  // A secret still on screen goes with the session.
  $("tokens").tBodies[0].replaceChildren();
  $("token-form").reset();
  $("token-scopes").replaceChildren($("token-scopes").firstElementChild);
  hideSecret();
  approveToken(null);
  for (const id of ["pipeline-status", "hipaa-status", "users-status", "replies-status", "tokens-status", "audit-verdict"]) status(id, "", null);
  $("not-admin").hidden = true;
  for (const id of SECTIONS) $(id).hidden = false;
}

CareHubSession.start({
  mainView: "admin-view",
  name: "admin",
  onSession: () => {
    admin("pipeline.get");
    admin("users.list");
    admin("replies.list");
    admin("tokens.list");
    refreshAudit();
  },
  onFrame: receive,
  onLock: reset,
});
