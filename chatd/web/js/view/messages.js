// The conversation: messages with sender and local time, the user's own
// marked. New messages are appended without redrawing the list, and the view
// follows them only when the reader was already at the bottom; otherwise it
// stays where the reader is and offers a "new messages" button.
// Older messages from history (and missed ones merged in place) redraw the
// list, keeping what the reader looks at where it was.
//
// Each entry is one child of the list: the message, after a day line when
// the day changes and the "new messages" line where reading starts again.
// Messages from one sender within a few minutes share one header. Links
// (http and https only) are built as elements; message text is only ever
// set as text.

import { $, el } from "./dom.js";

/** Within this many pixels of the bottom counts as "at the bottom". */
const STICK_PX = 48;

/** What is on screen: which conversation, and the last message shown. */
const shown = { key: null, lastSeq: 0, version: 0 };

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" });

/** Messages of one sender this close together share one header. */
const GROUP_MS = 5 * 60 * 1000;

const isChat = (m) => m && m.kind !== "notice" && m.kind !== "presence";
const dayOf = (ts) => new Date(ts).toDateString();

/** `http(s)://…` up to white space; trailing punctuation is not part of it. */
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"]+/gi;

/** Text with its web links as `<a>` elements; everything else is text. */
export function linkified(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let url = match[0].replace(/[.,;:!?'")\]]+$/, "");
    // A closing parenthesis belongs to the link when it opened one.
    if (match[0].length > url.length && match[0][url.length] === ")" && url.includes("(")) url += ")";
    let href = null;
    try {
      const parsed = new URL(url);
      if (parsed.protocol === "http:" || parsed.protocol === "https:") href = parsed.href;
    } catch {
      href = null;
    }
    if (!href) continue;
    if (match.index > last) parts.push(document.createTextNode(text.slice(last, match.index)));
    parts.push(el("a", { text: url, attrs: { href, target: "_blank", rel: "noopener noreferrer" } }));
    last = match.index + url.length;
  }
  if (last < text.length) parts.push(document.createTextNode(text.slice(last)));
  return parts;
}

function messageNode(m, prev, conv) {
  const date = new Date(m.ts);
  const time = el("time", { text: timeFormat.format(date), attrs: { datetime: date.toISOString(), title: dateFormat.format(date) } });
  const before = [];
  if (!prev || dayOf(prev.ts) !== dayOf(m.ts)) {
    before.push(el("div", { cls: "day", text: dayFormat.format(date), attrs: { role: "separator" } }));
  }
  if (conv.markerSeq !== null && m.seq === conv.markerSeq) {
    before.push(el("div", { cls: "unread-line", text: "new messages", attrs: { role: "separator" } }));
  }
  let node;
  if (!isChat(m)) {
    node = el("div", { cls: `msg ${m.kind}${m.error ? " error" : ""}`, attrs: { "data-kind": m.kind } }, [
      el("span", { cls: "text", text: m.text }), " ", time,
    ]);
  } else {
    const attrs = { "data-kind": m.kind, "data-from": m.from, "data-own": String(m.own) };
    if (m.msgId !== undefined) attrs["data-msg-id"] = String(m.msgId);
    const grouped = before.length === 0 && isChat(prev) && prev.kind === m.kind && prev.from === m.from
      && m.ts - prev.ts < GROUP_MS;
    const cls = `msg ${m.kind}${m.own ? " own" : ""}${m.mention ? " mention" : ""}${grouped ? " cont" : ""}`;
    if (grouped) attrs.title = dateFormat.format(date);
    node = el("div", { cls, attrs }, [
      grouped ? null : el("div", { cls: "meta" }, [el("span", { cls: "from", text: m.from }), time]),
      el("div", { cls: "text" }, linkified(m.text)),
    ]);
  }
  return el("div", { cls: "entry" }, [...before, node]);
}

/** The list's entries for a whole conversation. */
function entryNodes(conv) {
  return conv.messages.map((m, i) => messageNode(m, conv.messages[i - 1], conv));
}

function lastSeq(conv) {
  let last = 0;
  for (const m of conv.messages) if (m.seq > last) last = m.seq;
  return last;
}

export function isAtBottom() {
  const list = $("messages");
  return list.scrollHeight - list.scrollTop - list.clientHeight <= STICK_PX;
}

export function scrollToBottom() {
  const list = $("messages");
  list.scrollTop = list.scrollHeight;
  $("new-below").hidden = true;
}

export function renderMessages(state) {
  if (state.phase !== "chat") return;
  const list = $("messages");
  const conv = state.conversations.get(state.current);
  if (!conv) {
    list.replaceChildren();
    shown.key = null;
    return;
  }
  if (shown.key !== conv.key) {
    list.replaceChildren(...entryNodes(conv));
    shown.key = conv.key;
    shown.lastSeq = lastSeq(conv);
    shown.version = conv.version;
    scrollToBottom();
    return;
  }
  if (shown.version !== conv.version) {
    // Messages were inserted above (an older page) or in between (missed
    // ones): the content below the reader's view keeps its height, so the
    // same distance from the bottom shows the same messages.
    const follow = isAtBottom();
    const fromBottom = list.scrollHeight - list.scrollTop;
    list.replaceChildren(...entryNodes(conv));
    shown.lastSeq = lastSeq(conv);
    shown.version = conv.version;
    if (follow) scrollToBottom();
    else list.scrollTop = list.scrollHeight - fromBottom;
    return;
  }
  const fresh = conv.messages.filter((m) => m.seq > shown.lastSeq);
  if (fresh.length === 0) return;
  const follow = isAtBottom() || fresh.some((m) => m.own);
  for (const m of fresh) {
    const at = conv.messages.indexOf(m);
    list.append(messageNode(m, conv.messages[at - 1], conv));
  }
  shown.lastSeq = Math.max(...fresh.map((m) => m.seq));
  // Messages dropped from the state's history leave the screen too.
  while (list.childElementCount > conv.messages.length) list.firstElementChild.remove();
  if (follow) scrollToBottom();
  else $("new-below").hidden = false;
}
