// File transfer, when the server has the `files` plugin (docs/protocol.md,
// "File transfer frames"): pick or drop a file to send it to the current
// room or person, with progress (percent, rate, time left) and cancel;
// incoming files are fetched with one click, checked against their
// SHA-256, and only then saved. An image can be previewed, when asked.

import { Sha256 } from "../sha256.js";
import { dmKey, roomKey } from "../state.js";
import { $, el } from "../view/dom.js";

/** Bytes read from a local file at a time while hashing. */
const READ_BYTES = 1 << 20;

/** Transfers shown in the panel, by local key. */
const transfers = new Map();
let nextKey = 1;
let app = null;

export const files = {
  feature: "files",
  frames: {
    file_available: (frame) => {
      const t = add({
        direction: "down", id: frame.transfer, name: frame.name, size: frame.size,
        sha256: frame.sha256, peer: frame.from, room: frame.room ?? null, state: "available",
      });
      const where = frame.room ? ` in ${frame.room}` : "";
      const text = `${frame.from} sent a file${where}: ${frame.name} (${formatSize(frame.size)}). It is in the transfers list above the message box.`;
      // Announced in the conversation it was sent to, whichever is open.
      if (frame.room) app.dispatch({ type: "notice", key: roomKey(frame.room), text });
      else app.dispatch({ type: "notice", key: dmKey(frame.from), dm: frame.from, text });
      render();
      return t;
    },
    file_delivered: (frame) => note(frame.transfer, `${frame.to} received it`),
    file_declined: (frame) => note(frame.transfer, `${frame.by} declined it`),
    file_removed: (frame) => {
      const t = byId(frame.transfer);
      if (t && t.state !== "ready") {
        t.state = "failed";
        t.error = `The server removed this file (${frame.reason}).`;
      }
      render();
    },
  },
  start(a) {
    const firstStart = app === null;
    app = a;
    $("attach").hidden = false;
    // A reconnect loses requests in flight: downloads can start over,
    // uploads must be sent again.
    for (const t of transfers.values()) {
      if (t.state === "downloading") t.state = "available";
      if (t.state === "uploading" || t.state === "hashing" || t.state === "offering") {
        t.state = "failed";
        t.error = "Interrupted when the connection dropped; send the file again.";
      }
    }
    if (firstStart) wire();
    render();
  },
};

/** Names shown as a preview when the user asks (never SVG: it is a
 * document, not a picture). */
const IMAGE_NAME = /\.(png|jpe?g|gif|webp|avif|bmp)$/i;

function add(fields) {
  const t = { key: nextKey++, done: 0, error: "", notes: [], startedAt: 0, finishedAt: 0, preview: false, ...fields };
  transfers.set(t.key, t);
  return t;
}

function byId(id) {
  for (const t of transfers.values()) if (t.id === id) return t;
  return null;
}

function note(id, text) {
  const t = byId(id);
  if (t) t.notes.push(text);
  render();
}

/** A request as a promise of its reply (an error frame when offline). */
function request(frame) {
  return new Promise((resolve) => {
    if (!app.request(frame, resolve)) resolve({ type: "error", code: "offline", message: "not connected to the server" });
  });
}

function failed(t, reply) {
  t.state = "failed";
  t.error = reply.message ? reply.message[0].toUpperCase() + reply.message.slice(1) : "The transfer failed.";
  render();
}

async function upload(file) {
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
  const t = add({ direction: "up", name: file.name, size: file.size, peer: conv.name, state: "hashing", inflight: 0 });
  render();

  const hash = new Sha256();
  for (let offset = 0; offset < file.size; offset += READ_BYTES) {
    hash.update(new Uint8Array(await file.slice(offset, offset + READ_BYTES).arrayBuffer()));
    if (t.state !== "hashing") return;
  }
  t.state = "offering";
  const offered = await request({ type: "file_offer", ...target, name: file.name, size: file.size, sha256: hash.hex() });
  if (t.state !== "offering") return;
  if (offered.type !== "file_offered") return failed(t, offered);
  t.id = offered.transfer;
  t.state = "uploading";
  t.startedAt = Date.now();
  render();

  // Chunks go out in order, at most `window` unacknowledged.
  let offset = 0;
  while (offset < file.size && t.state === "uploading") {
    if (t.inflight >= offered.window) {
      await new Promise((wake) => { t.wake = wake; });
      continue;
    }
    const bytes = new Uint8Array(await file.slice(offset, offset + offered.chunk_size).arrayBuffer());
    if (t.state !== "uploading") return;
    t.inflight += 1;
    const sent = app.request({ type: "file_chunk", transfer: t.id, offset, data: toBase64(bytes) }, (reply) => {
      t.inflight -= 1;
      if (reply.type === "file_ack") t.done = Math.max(t.done, reply.received);
      else if (reply.type === "file_complete") {
        t.done = t.size;
        t.state = "sent";
        t.finishedAt = Date.now();
        t.notes.push(`checked by the server, offered to ${reply.recipients.join(", ") || "nobody"}`);
      } else if (t.state === "uploading") failed(t, reply);
      const wake = t.wake;
      t.wake = null;
      wake?.();
      render();
    });
    if (!sent) return failed(t, { message: "not connected to the server" });
    offset += bytes.length;
  }
}

async function download(t) {
  t.state = "downloading";
  t.done = 0;
  t.startedAt = Date.now();
  render();
  const parts = [];
  const hash = new Sha256();
  while (t.done < t.size) {
    const reply = await request({ type: "file_get", transfer: t.id, offset: t.done });
    if (t.state !== "downloading") return;
    if (reply.type !== "file_data") return failed(t, reply);
    const bytes = fromBase64(reply.data);
    if (bytes.length === 0) break;
    hash.update(bytes);
    parts.push(bytes);
    t.done += bytes.length;
    render();
    if (reply.eof) break;
  }
  if (t.done !== t.size || hash.hex() !== t.sha256) {
    t.state = "failed";
    t.error = "The file arrived damaged (its checksum does not match), so it is not offered. Ask the sender to send it again.";
    request({ type: "file_decline", transfer: t.id });
    render();
    return;
  }
  t.url = URL.createObjectURL(new Blob(parts));
  t.state = "ready";
  t.finishedAt = Date.now();
  request({ type: "file_received", transfer: t.id });
  render();
  // One click: verified, the file is saved at once (Save does it again).
  save(t);
}

function save(t) {
  const link = el("a", { attrs: { href: t.url, download: t.name } });
  link.click();
}

async function cancel(t) {
  if (t.direction === "up") {
    const was = t.state;
    t.state = "cancelled";
    t.wake?.();
    if (t.id && was !== "sent") await request({ type: "file_cancel", transfer: t.id });
  } else {
    t.state = "declined";
    await request({ type: "file_decline", transfer: t.id });
  }
  render();
}

function dismiss(t) {
  if (t.url) URL.revokeObjectURL(t.url);
  transfers.delete(t.key);
  render();
}

function wire() {
  const input = $("file-input");
  $("attach").addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    for (const file of input.files) upload(file);
    input.value = "";
  });
  const zone = document.querySelector(".conversation");
  zone.addEventListener("dragover", (e) => {
    if (![...e.dataTransfer.types].includes("Files")) return;
    e.preventDefault();
    zone.classList.add("dropping");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dropping"));
  zone.addEventListener("drop", (e) => {
    zone.classList.remove("dropping");
    if (!e.dataTransfer.files.length) return;
    e.preventDefault();
    for (const file of e.dataTransfer.files) upload(file);
  });
}

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

function render() {
  const list = $("transfers");
  list.hidden = transfers.size === 0;
  list.replaceChildren(...[...transfers.values()].map((t) => {
    const who = t.direction === "up" ? `to ${t.peer}` : `from ${t.peer}${t.room ? ` in ${t.room}` : ""}`;
    const status = [STATE_TEXT[t.state], ...t.notes].join("; ");
    const actions = [];
    if (["hashing", "offering", "uploading"].includes(t.state)) actions.push(button("Cancel", "secondary cancel", () => cancel(t)));
    if (t.state === "available") {
      actions.push(button("Download", "download", () => download(t)));
      actions.push(button("Decline", "secondary decline", () => cancel(t)));
    }
    if (t.state === "ready") {
      actions.push(el("a", { cls: "save", text: "Save again", attrs: { href: t.url, download: t.name } }));
      if (IMAGE_NAME.test(t.name)) {
        actions.push(button(t.preview ? "Hide preview" : "Preview", "secondary preview", () => {
          t.preview = !t.preview;
          render();
        }));
      }
    }
    if (["sent", "ready", "cancelled", "declined", "failed"].includes(t.state)) {
      actions.push(button("×", "icon dismiss", () => dismiss(t)));
    }
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
        ...actions,
      ]),
    ]);
  }));
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
