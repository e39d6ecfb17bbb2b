// The conversation: messages with sender and local time, the user's own
// marked. New messages are appended without redrawing the list, and the view
// follows them only when the reader was already at the bottom; otherwise it
// stays where the reader is and offers a "new messages" button.
// Older messages from history (and missed ones merged in place) redraw the
// list, keeping what the reader looks at where it was.

import { $, el } from "./dom.js";

/** Within this many pixels of the bottom counts as "at the bottom". */
const STICK_PX = 48;

/** What is on screen: which conversation, and the last message shown. */
const shown = { key: null, lastSeq: 0, version: 0 };

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

function messageNode(m) {
  const date = new Date(m.ts);
  const time = el("time", { text: timeFormat.format(date), attrs: { datetime: date.toISOString(), title: dateFormat.format(date) } });
  if (m.kind === "notice" || m.kind === "presence") {
    return el("div", { cls: `msg ${m.kind}${m.error ? " error" : ""}`, attrs: { "data-kind": m.kind } }, [
      el("span", { cls: "text", text: m.text }), " ", time,
    ]);
  }
  const attrs = { "data-kind": m.kind, "data-from": m.from, "data-own": String(m.own) };
  if (m.msgId !== undefined) attrs["data-msg-id"] = String(m.msgId);
  return el("div", { cls: `msg ${m.kind}${m.own ? " own" : ""}`, attrs }, [
    el("div", { cls: "meta" }, [el("span", { cls: "from", text: m.from }), time]),
    el("div", { cls: "text", text: m.text }),
  ]);
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
    list.replaceChildren(...conv.messages.map(messageNode));
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
    list.replaceChildren(...conv.messages.map(messageNode));
    shown.lastSeq = lastSeq(conv);
    shown.version = conv.version;
    if (follow) scrollToBottom();
    else list.scrollTop = list.scrollHeight - fromBottom;
    return;
  }
  const fresh = conv.messages.filter((m) => m.seq > shown.lastSeq);
  if (fresh.length === 0) return;
  const follow = isAtBottom() || fresh.some((m) => m.own);
  for (const m of fresh) list.append(messageNode(m));
  shown.lastSeq = Math.max(...fresh.map((m) => m.seq));
  // Messages dropped from the state's history leave the screen too.
  while (list.childElementCount > conv.messages.length) list.firstElementChild.remove();
  if (follow) scrollToBottom();
  else $("new-below").hidden = false;
}
