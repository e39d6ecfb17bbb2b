// File transfer, when the server has the `files` plugin (docs/protocol.md,
// "File transfer frames"): pick or drop a file to send it to the current
// room or person, with progress (percent, rate, time left) and cancel;
// incoming files are fetched with one click, checked against their
// SHA-256, and only then saved. An image can be previewed, when asked.
//
// The transfers live in `state.files` and change only through the
// reducers below; the upload and download loops are effects that read the
// state and dispatch events, and `view` draws the list from the state.

import { Sha256 } from "../sha256.js";
import { dmKey, ensure, noticeIn, roomKey } from "../state/model.js";
import { $, el } from "../view/dom.js";

/** Bytes read from a local file at a time while hashing. */
const READ_BYTES = 1 << 20;

/** Names shown as a preview when the user asks (never SVG: it is a
 * document, not a picture). */
const IMAGE_NAME = /\.(png|jpe?g|gif|webp|avif|bmp)$/i;

/** The part of the initial state this module owns. */
export function initialFiles() {
  return {
    /** Transfers shown in the panel, by local key, oldest first. */
    transfers: new Map(),
    /** The key the next transfer gets. */
    nextKey: 1,
  };
}

function byId(state, id) {
  for (const t of state.files.transfers.values()) if (t.id === id) return t;
  return null;
}

function addTransfer(state, fields) {
  const t = { key: state.files.nextKey++, done: 0, error: "", notes: [], startedAt: 0, finishedAt: 0, preview: false, ...fields };
  state.files.transfers.set(t.key, t);
  return t;
}

function noteOn(state, id, text) {
  const t = byId(state, id);
  if (t) t.notes.push(text);
}

/** The words shown for a failed request's error reply. */
function failure(reply) {
  return reply.message ? reply.message[0].toUpperCase() + reply.message.slice(1) : "The transfer failed.";
}

export const filesReducers = {
  file_available(state, { frame }) {
    addTransfer(state, {
      direction: "down", id: frame.transfer, name: frame.name, size: frame.size,
      sha256: frame.sha256, peer: frame.from, room: frame.room ?? null, state: "available",
    });
    const where = frame.room ? ` in ${frame.room}` : "";
    const text = `${frame.from} sent a file${where}: ${frame.name} (${formatSize(frame.size)}). It is in the transfers list above the message box.`;
    // Announced in the conversation it was sent to, whichever is open.
    if (frame.room) noticeIn(state, roomKey(frame.room), text);
    else {
      ensure(state, dmKey(frame.from), "dm", frame.from);
      noticeIn(state, dmKey(frame.from), text);
    }
  },
  file_delivered(state, { frame }) {
    noteOn(state, frame.transfer, `${frame.to} received it`);
  },
  file_declined(state, { frame }) {
    noteOn(state, frame.transfer, `${frame.by} declined it`);
  },
  file_removed(state, { frame }) {
    const t = byId(state, frame.transfer);
    if (t && t.state !== "ready") {
      t.state = "failed";
      t.error = `The server removed this file (${frame.reason}).`;
    }
  },
  /** A new connection: requests in flight were lost. Downloads can start
   * over, uploads must be sent again. */
  transfers_interrupted(state) {
    for (const t of state.files.transfers.values()) {
      if (t.state === "downloading") t.state = "available";
      if (t.state === "uploading" || t.state === "hashing" || t.state === "offering") {
        t.state = "failed";
        t.error = "Interrupted when the connection dropped; send the file again.";
      }
    }
  },
  /** An upload starts (its key is `state.files.nextKey` before this). */
  transfer_added(state, { fields }) {
    addTransfer(state, fields);
  },
  /** Progress or a new stage of a transfer: its fields, replaced. */
  transfer_changed(state, { key, fields }) {
    const t = state.files.transfers.get(key);
    if (t) Object.assign(t, fields);
  },
  transfer_failed(state, { key, reply }) {
    const t = state.files.transfers.get(key);
    if (t) Object.assign(t, { state: "failed", error: failure(reply) });
  },
  transfer_noted(state, { key, text }) {
    state.files.transfers.get(key)?.notes.push(text);
  },
  transfer_dismissed(state, { key }) {
    state.files.transfers.delete(key);
  },
  transfer_preview_toggled(state, { key }) {
    const t = state.files.transfers.get(key);
    if (t) t.preview = !t.preview;
  },
};

/** A transfer as it is now (null once dismissed). */
function current(app, key) {
  return app.state.files.transfers.get(key) ?? null;
}

/** A request as a promise of its reply (an error frame when offline). */
function request(app, frame) {
  return new Promise((resolve) => {
    if (!app.request(frame, resolve)) resolve({ type: "error", code: "offline", message: "not connected to the server" });
  });
}

const change = (app, key, fields) => app.dispatch({ type: "transfer_changed", key, fields });
const fail = (app, key, reply) => app.dispatch({ type: "transfer_failed", key, reply });

async function upload(app, file) {
  const conv = app.state.conversations.get(app.state.current);
  if (!conv || conv.kind === "server") {
    app.notice("Open a room or a conversation first; the file goes to it.", true);
    return;
  }
  if (file.size === 0) {
    app.notice(`${file.name} is empty; there is nothing to send.`, true);
    return;
  }
  const target = conv.kind === "room" ? { room: conv.name } : { to: conv.name };
  const key = app.state.files.nextKey;
  app.dispatch({ type: "transfer_added", fields: { direction: "up", name: file.name, size: file.size, peer: conv.name, state: "hashing" } });
  const stage = () => current(app, key)?.state;

  const hash = new Sha256();
  for (let offset = 0; offset < file.size; offset += READ_BYTES) {
    hash.update(new Uint8Array(await file.slice(offset, offset + READ_BYTES).arrayBuffer()));
    if (stage() !== "hashing") return;
  }
  change(app, key, { state: "offering" });
  const offered = await request(app, { type: "file_offer", ...target, name: file.name, size: file.size, sha256: hash.hex() });
  if (stage() !== "offering") return;
  if (offered.type !== "file_offered") return fail(app, key, offered);
  change(app, key, { id: offered.transfer, state: "uploading", startedAt: Date.now() });
  await sendChunks(app, key, file, offered);
}

/** Sends the chunks in order, at most `offered.window` unacknowledged. */
async function sendChunks(app, key, file, offered) {
  const stage = () => current(app, key)?.state;
  let inflight = 0;
  let offset = 0;
  while (offset < file.size && stage() === "uploading") {
    if (inflight >= offered.window) {
      // Woken by the next reply, or by a cancel (`wake` is a handle of
      // this loop, kept on the transfer so that `cancel` can reach it).
      await new Promise((wake) => change(app, key, { wake }));
      continue;
    }
    const bytes = new Uint8Array(await file.slice(offset, offset + offered.chunk_size).arrayBuffer());
    if (stage() !== "uploading") return;
    inflight += 1;
    const sent = app.request({ type: "file_chunk", transfer: offered.transfer, offset, data: toBase64(bytes) }, (reply) => {
      inflight -= 1;
      const t = current(app, key);
      if (!t) return;
      if (reply.type === "file_ack") change(app, key, { done: Math.max(t.done, reply.received) });
      else if (reply.type === "file_complete") {
        change(app, key, { done: t.size, state: "sent", finishedAt: Date.now() });
        app.dispatch({ type: "transfer_noted", key, text: `checked by the server, offered to ${reply.recipients.join(", ") || "nobody"}` });
      } else if (t.state === "uploading") fail(app, key, reply);
      const wake = t.wake;
      change(app, key, { wake: null });
      wake?.();
    });
    if (!sent) return fail(app, key, { message: "not connected to the server" });
    offset += bytes.length;
  }
}

async function download(app, key) {
  const t = current(app, key);
  change(app, key, { state: "downloading", done: 0, startedAt: Date.now() });
  const parts = [];
  const hash = new Sha256();
  let done = 0;
  while (done < t.size) {
    const reply = await request(app, { type: "file_get", transfer: t.id, offset: done });
    if (current(app, key)?.state !== "downloading") return;
    if (reply.type !== "file_data") return fail(app, key, reply);
    const bytes = fromBase64(reply.data);
    if (bytes.length === 0) break;
    hash.update(bytes);
    parts.push(bytes);
    done += bytes.length;
    change(app, key, { done });
    if (reply.eof) break;
  }
  if (done !== t.size || hash.hex() !== t.sha256) {
    change(app, key, {
      state: "failed",
      error: "The file arrived damaged (its checksum does not match), so it is not offered. Ask the sender to send it again.",
    });
    request(app, { type: "file_decline", transfer: t.id });
    return;
  }
  const url = URL.createObjectURL(new Blob(parts));
  change(app, key, { url, state: "ready", finishedAt: Date.now() });
  request(app, { type: "file_received", transfer: t.id });
  // One click: verified, the file is saved at once (Save does it again).
  save(t.name, url);
}

function save(name, url) {
  const link = el("a", { attrs: { href: url, download: name } });
  link.click();
}

async function cancel(app, key) {
  const t = current(app, key);
  if (!t) return;
  if (t.direction === "up") {
    const was = t.state;
    change(app, key, { state: "cancelled" });
    t.wake?.();
    if (t.id && was !== "sent") await request(app, { type: "file_cancel", transfer: t.id });
  } else {
    change(app, key, { state: "declined" });
    await request(app, { type: "file_decline", transfer: t.id });
  }
}

function dismiss(app, key) {
  const url = current(app, key)?.url;
  if (url) URL.revokeObjectURL(url);
  app.dispatch({ type: "transfer_dismissed", key });
}

/** Connects the page's file picker and drop zone (once, at start). */
function wire(app) {
  const input = $("file-input");
  $("attach").addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    for (const file of input.files) upload(app, file);
    input.value = "";
  });
  const zone = document.querySelector(".conversation");
  zone.addEventListener("dragover", (e) => {
    if (!app.state.features.has("files") || ![...e.dataTransfer.types].includes("Files")) return;
    e.preventDefault();
    zone.classList.add("dropping");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dropping"));
  zone.addEventListener("drop", (e) => {
    zone.classList.remove("dropping");
    if (!app.state.features.has("files") || !e.dataTransfer.files.length) return;
    e.preventDefault();
    for (const file of e.dataTransfer.files) upload(app, file);
  });
}

export const files = {
  feature: "files",
  reducers: filesReducers,
  // Server frames become events of the same name.
  frames: ["file_available", "file_delivered", "file_declined", "file_removed"],
  start: (app) => app.dispatch({ type: "transfers_interrupted" }),
  wire,
  view: (state, app) => view(state, app),
};

/** "45% · 1.2 MB/s · 3 s left" while moving; "100% in 2.1 s" when done. */
export function progressText(t, now = Date.now()) {
  const percent = t.size > 0 ? Math.floor((Math.min(t.done, t.size) * 100) / t.size) : 100;
  if (!t.startedAt) return `${percent}%`;
  if (t.finishedAt) return `${percent}% in ${((t.finishedAt - t.startedAt) / 1000).toFixed(1)} s`;
  if (!["uploading", "downloading"].includes(t.state)) return `${percent}%`;
  const seconds = (now - t.startedAt) / 1000;
  const rate = seconds > 0 ? t.done / seconds : 0;
  if (rate <= 0) return `${percent}%`;
  const left = Math.ceil((t.size - t.done) / rate);
  const leftText = left < 60 ? `${left} s` : `${Math.floor(left / 60)} min ${left % 60} s`;
  return `${percent}% · ${formatSize(Math.round(rate))}/s · ${leftText} left`;
}

const STATE_TEXT = {
  hashing: "computing the checksum…",
  offering: "offering…",
  uploading: "sending…",
  sent: "sent",
  available: "waiting for you",
  downloading: "receiving…",
  ready: "received and verified",
  cancelled: "cancelled",
  declined: "declined",
  failed: "failed",
};

function button(text, cls, onClick) {
  const b = el("button", { cls, text, attrs: { type: "button" } });
  b.addEventListener("click", onClick);
  return b;
}

/** Draws the transfers panel and the attach button from the state. */
function view(state, app) {
  const transfers = state.files.transfers;
  $("attach").hidden = false;
  const list = $("transfers");
  list.hidden = transfers.size === 0;
  list.replaceChildren(...[...transfers.values()].map((t) => transferItem(t, app)));
}

/** The actions offered for a transfer in its present stage. */
function actionsFor(t, app) {
  const actions = [];
  if (["hashing", "offering", "uploading"].includes(t.state)) actions.push(button("Cancel", "secondary cancel", () => cancel(app, t.key)));
  if (t.state === "available") {
    actions.push(button("Download", "download", () => download(app, t.key)));
    actions.push(button("Decline", "secondary decline", () => cancel(app, t.key)));
  }
  if (t.state === "ready") {
    actions.push(el("a", { cls: "save", text: "Save again", attrs: { href: t.url, download: t.name } }));
    if (IMAGE_NAME.test(t.name)) {
      actions.push(button(t.preview ? "Hide preview" : "Preview", "secondary preview",
        () => app.dispatch({ type: "transfer_preview_toggled", key: t.key })));
    }
  }
  if (["sent", "ready", "cancelled", "declined", "failed"].includes(t.state)) {
    actions.push(button("×", "icon dismiss", () => dismiss(app, t.key)));
  }
  return actions;
}

function transferItem(t, app) {
  const who = t.direction === "up" ? `to ${t.peer}` : `from ${t.peer}${t.room ? ` in ${t.room}` : ""}`;
  const status = [STATE_TEXT[t.state], ...t.notes].join("; ");
  return el("li", { cls: `transfer ${t.direction} ${t.state}`, attrs: { "data-state": t.state, "data-name": t.name } }, [
    el("div", { cls: "transfer-line" }, [
      el("span", { cls: "file-name", text: t.name }),
      el("span", { cls: "muted", text: ` ${formatSize(t.size)} ${who}` }),
    ]),
    el("div", { cls: "transfer-line" }, [
      el("progress", { attrs: { max: String(t.size), value: String(t.done), "aria-label": `Progress of ${t.name}` } }),
      el("span", { cls: "progress-text muted", text: progressText(t) }),
    ]),
    t.preview && t.url ? el("img", { cls: "preview", attrs: { src: t.url, alt: `Preview of ${t.name}` } }) : null,
    el("div", { cls: "transfer-line" }, [
      el("span", { cls: `file-status${t.error ? " error" : ""}`, text: t.error || status }),
      ...actionsFor(t, app),
    ]),
  ]);
}

export function formatSize(bytes) {
  const units = ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function fromBase64(data) {
  const text = atob(data);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}
