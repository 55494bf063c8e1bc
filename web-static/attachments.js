// CareHub attachments, shared by the chat widget and the staff console: sending a file to a room
// over HTTP (with upload progress), and showing a message's attachment (docs/PROTOCOL.md,
// "Attachments"). Pictures are shown from the bytes fetched with the page's bearer token (an
// object URL, revoked once the picture is drawn); the hub never makes a thumbnail. Other files
// are a named link that fetches the file and saves it under its name.
//
// Nothing here is stored in the browser: tokens are passed in by the page, files stay in memory.
"use strict";
var CareHubAttachments = CareHubAttachments || (() => {
  // What the hub takes by default (pipeline.conf `attachments … types=`); a hint for the file
  // picker only: the hub checks the bytes.
  const accept = "image/jpeg,image/png,image/gif,image/webp,application/pdf";
  const pictures = new Set(["image/jpeg", "image/png", "image/gif", "image/webp"]);
  // Files this large or larger show a progress bar while they are sent.
  const progressFrom = 256 * 1024;
  const nameLimit = 255; // bytes of UTF-8, as the hub counts them
  const encoder = new TextEncoder();

  // The status of each refusal, for an answer that carries no readable code.
  const codeOfStatus = { 400: "invalid_field", 401: "auth_failed", 403: "forbidden", 404: "not_found", 409: "conversation_ended",
    413: "too_large", 415: "unsupported_type", 422: "infected", 429: "rate_limited", 503: "unavailable" };
  // Worth trying again as it is.
  const retryable = new Set(["unavailable", "rate_limited", "network", "internal"]);

  // A plain sentence for each refusal of a file; `limit` is the organisation's size limit in
  // bytes when the hub gave it.
  function sentence(code, limit) {
    switch (code) {
      case "too_large": return limit ? `That file is too big to send (the limit is ${sizeText(limit)}).` : "That file is too big to send.";
      case "unsupported_type": return "You can send photos (JPEG, PNG, GIF, WebP) and PDF files.";
      case "infected": return "That file was refused because it may contain a virus.";
      case "unavailable": return "Files cannot be received just now. Please try again in a moment.";
      case "rate_limited": return "You are sending files very quickly. Please wait a moment and try again.";
      case "conversation_ended": return "This chat has ended, so the file was not sent.";
      case "forbidden": return "Files cannot be sent in this chat.";
      case "not_found": return "This chat could not be found, so the file was not sent.";
      case "invalid_field": return "That file could not be sent. Please check its name and try again.";
      case "auth_failed": case "unauthenticated": case "session_expired": return "The chat's session has ended, so the file was not sent.";
      case "network": return "The file could not be sent: the connection failed. Please try again.";
      default: return "Something went wrong sending the file. Please try again.";
    }
  }

  // Sizes as the hub writes them: "980 bytes", "64 KB", "1.2 MB" (powers of 1,000, as
  // pipeline.conf's max_size is written).
  function sizeText(bytes) {
    if (!(bytes >= 0)) return "";
    for (const [size, unit] of [[1e9, "GB"], [1e6, "MB"], [1e3, "KB"]]) {
      if (bytes < size) continue;
      const value = bytes / size;
      return `${value < 10 ? Math.round(value * 10) / 10 : Math.round(value)} ${unit}`;
    }
    return bytes === 1 ? "1 byte" : `${bytes} bytes`;
  }

  // The name sent in X-Filename: no control or reordering characters, at most 255 bytes (the
  // end, with its extension, kept).
  function fileName(name) {
    let clean = String(name || "").replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, "").trim() || "file";
    while (encoder.encode(clean).length > nameLimit) {
      const dot = clean.lastIndexOf(".");
      const keep = dot > 0 && clean.length - dot <= 16 ? clean.slice(dot) : "";
      clean = clean.slice(0, Math.max(1, clean.length - keep.length - 8)) + keep;
    }
    return clean;
  }

  // The refusal in an answer: { code, limit, retryable }.
  function refusal(status, body) {
    const code = (body && typeof body.code === "string" && body.code) || codeOfStatus[status] || (status === 0 ? "network" : "internal");
    let limit = body && typeof body.maxSize === "number" ? body.maxSize : null;
    const said = body && typeof body.message === "string" ? body.message.match(/(\d+(?:\.\d+)?)\s*([KMG])B\b/i) : null;
    if (limit === null && said) limit = Number(said[1]) * { K: 1e3, M: 1e6, G: 1e9 }[said[2].toUpperCase()];
    return { code, limit, retryable: retryable.has(code) };
  }

  // Sends `file` to a room: resolves with the hub's answer ({ attachment, room, seq }), rejects
  // with a refusal. `progress(sent, total)` is called as the bytes go.
  function upload({ url, token, file, progress }) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open("POST", url);
      request.setRequestHeader("Authorization", `Bearer ${token}`);
      request.setRequestHeader("X-Filename", encodeURIComponent(fileName(file.name)));
      if (progress) request.upload.addEventListener("progress", event => { if (event.lengthComputable) progress(event.loaded, event.total); });
      request.addEventListener("load", () => {
        let body = null;
        try { body = JSON.parse(request.responseText); } catch { /* not JSON: judged by the status */ }
        if (request.status === 201 && body && body.attachment) resolve(body);
        else reject(refusal(request.status, body));
      });
      request.addEventListener("error", () => reject(refusal(0, null)));
      request.addEventListener("abort", () => reject(refusal(0, null)));
      // The raw bytes, without a content type: the hub finds the type in the bytes themselves.
      request.send(file.slice(0, file.size, ""));
    });
  }

  // The file's bytes as a Blob, fetched with the bearer token; rejects with a refusal.
  async function download(url, token) {
    let answer;
    try {
      answer = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store", credentials: "omit" });
    } catch {
      throw refusal(0, null);
    }
    if (answer.ok) return answer.blob();
    let body = null;
    try { body = await answer.json(); } catch { /* judged by the status */ }
    throw refusal(answer.status, body);
  }

  const element = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  // Why an attachment cannot be shown, in plain words.
  function unavailable(problem) {
    if (problem.code === "attachment_held") return "This file is still being checked.";
    if (problem.code === "forbidden" || problem.code === "not_found") return "This file is no longer available.";
    return "The file could not be loaded.";
  }

  // Fills `box` with a message's attachment: a picture drawn from its bytes, or a link that
  // saves it; "being checked…" while it is held. `source` gives { url(id), token() }.
  // Called again when the state changes (attachment_ready).
  function show(box, attachment, source) {
    const name = typeof attachment.name === "string" && attachment.name ? attachment.name : "(file name unavailable)";
    const size = sizeText(attachment.size);
    box.className = "carehub-attachment";
    box.carehubAttachment = attachment;
    box.dataset.attachment = attachment.id;
    box.dataset.state = attachment.state;
    const link = element("a", "carehub-file-link", name);
    link.href = source.url(attachment.id);
    link.download = name;
    const label = size ? `${name} (${size})` : name;
    link.setAttribute("aria-label", `Download ${label}`);
    const detail = element("span", "carehub-file-size", size);
    const note = element("span", "carehub-attachment-note", "");
    note.setAttribute("role", "status");
    if (attachment.state !== "ready") {
      box.replaceChildren(element("span", "carehub-file-name", name), detail, element("span", "carehub-attachment-note", "being checked…"));
      return;
    }
    link.addEventListener("click", event => {
      event.preventDefault();
      note.textContent = "Downloading…";
      download(source.url(attachment.id), source.token()).then(blob => {
        note.textContent = "";
        save(blob, name);
      }, problem => { note.textContent = unavailable(problem); });
    });
    box.replaceChildren(link, detail, note);
    if (pictures.has(attachment.type)) picture(box, link, note, attachment, name, source);
  }

  // A held attachment passed the scanner (attachment_ready): shown as any other.
  function ready(box, source) {
    if (box.carehubAttachment) show(box, { ...box.carehubAttachment, state: "ready" }, source);
  }

  // Saves the bytes under the file's name, as a download of the page's own object URL.
  function save(blob, name) {
    const url = URL.createObjectURL(blob);
    const anchor = element("a");
    anchor.href = url;
    anchor.download = name;
    anchor.hidden = true;
    document.body.appendChild(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  // The picture itself, before the link: an <img> of an object URL of the bytes. A page whose
  // own policy refuses blob: images (a clinic's strict CSP) gets it drawn on a canvas instead.
  function picture(box, link, note, attachment, name, source) {
    const frame = element("span", "carehub-thumb-frame");
    box.insertBefore(frame, link);
    download(source.url(attachment.id), source.token()).then(blob => {
      const url = URL.createObjectURL(blob);
      const image = element("img", "carehub-thumb");
      image.alt = `Picture: ${name}`;
      image.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
      image.addEventListener("error", () => {
        URL.revokeObjectURL(url);
        if (typeof createImageBitmap !== "function") { frame.remove(); return; }
        createImageBitmap(blob).then(bitmap => {
          const canvas = element("canvas", "carehub-thumb");
          canvas.width = bitmap.width;
          canvas.height = bitmap.height;
          canvas.getContext("2d").drawImage(bitmap, 0, 0);
          bitmap.close();
          canvas.setAttribute("role", "img");
          canvas.setAttribute("aria-label", image.alt);
          frame.replaceChildren(canvas);
        }, () => frame.remove());
      }, { once: true });
      image.src = url;
      frame.replaceChildren(image);
    }, problem => { frame.remove(); note.textContent = unavailable(problem); });
  }

  // A held attachment refused by the scanner: a short notice in place of the file.
  function refuse(box, code) {
    box.dataset.state = "refused";
    const name = box.querySelector(".carehub-file-name, .carehub-file-link");
    const what = name ? `“${name.textContent}”` : "This file";
    const why = code === "infected" ? "was refused because it may contain a virus" : "could not be kept";
    box.replaceChildren(element("span", "carehub-attachment-note carehub-refused", `${what} ${why}.`));
  }

  // The files a drag carries, if any.
  const carriesFiles = event => Array.from(event.dataTransfer?.types || []).includes("Files");

  // Makes `zone` take files dropped on it while `ready()`; `take(files)` gets them. The zone has
  // the class `carehub-dropping` while files are dragged over it.
  function dropZone(zone, ready, take) {
    let depth = 0;
    const clear = () => { depth = 0; zone.classList.remove("carehub-dropping"); };
    zone.addEventListener("dragenter", event => {
      if (!carriesFiles(event) || !ready()) return;
      event.preventDefault();
      depth += 1;
      zone.classList.add("carehub-dropping");
    });
    zone.addEventListener("dragover", event => {
      if (!carriesFiles(event) || !ready()) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    zone.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (depth === 0) clear(); });
    zone.addEventListener("drop", event => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      clear();
      if (ready() && event.dataTransfer.files.length) take(Array.from(event.dataTransfer.files));
    });
  }

  // A progress bar for a file being sent, or null for a small one.
  function progressBar(file) {
    if (file.size < progressFrom) return null;
    const bar = element("progress", "carehub-progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", `Sending ${file.name}`);
    return bar;
  }

  // The paper-clip button's picture (drawn, so that no font or image file is needed).
  function clip() {
    const drawn = (tag, attributes) => {
      const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
      for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
      return node;
    };
    const svg = drawn("svg", { viewBox: "0 0 24 24", width: "22", height: "22", "aria-hidden": "true", focusable: "false" });
    svg.appendChild(drawn("path", {
      d: "M16.5 6.5l-8.2 8.2a2 2 0 0 0 2.8 2.8l8.5-8.5a4 4 0 0 0-5.7-5.7L5.3 11.9a6 6 0 0 0 8.5 8.5l6.7-6.7",
      fill: "none", stroke: "currentColor", "stroke-width": "2", "stroke-linecap": "round", "stroke-linejoin": "round",
    }));
    return svg;
  }

  return { accept, sentence, sizeText, fileName, upload, download, show, ready, refuse, dropZone, progressBar, clip };
})();
