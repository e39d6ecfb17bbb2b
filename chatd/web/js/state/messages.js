// Reducers of what conversations hold: live messages, our own confirmed
// ones (`sent`), missed ones after a resume, pages of stored history, and
// the read markers and unread counts.

import {
  SERVER_KEY, addById, append, conversationOf, dmKey, ensure, entryOf, roomKey,
} from "./model.js";

/** Forget each conversation's history paging, so that it asks for its
 * latest page again when shown; `clear(conv)` says whose stored messages
 * go too (they can be read back). */
function restartHistory(state, clear) {
  for (const conv of state.conversations.values()) {
    if (conv.kind === "server") continue;
    conv.history = { loaded: false, loading: false, more: true };
    if (clear(conv)) {
      conv.messages = conv.messages.filter((e) => e.msgId === undefined);
      conv.version += 1;
    }
  }
}

export const messageReducers = {
  message(state, event) {
    const m = event.message;
    const conv = conversationOf(state, m);
    // Without stored history a server may hand out ids again after a
    // restart: only then are they no reliable key.
    if (state.features.has("history") && typeof m.msg_id === "number") addById(state, conv, entryOf(state, m), { countUnread: true });
    else append(state, conv, entryOf(state, m));
  },
  missed(state, event) {
    // Messages sent while we were away, oldest first; `unread` follows
    // with the server's counts.
    for (const m of event.messages) addById(state, conversationOf(state, m), entryOf(state, m), { countUnread: false });
  },
  resumed_gap(state) {
    // More was missed than the server sends at once: start each
    // conversation over from its latest page (scrolling up reads back).
    restartHistory(state, () => true);
  },
  history_reload(state, event) {
    // After logging in again without a resume point: each conversation
    // asks for its latest page again when shown. Rooms start over from
    // it (their whole history can be read back), so that no gap hides
    // between what was shown and the latest page; a guest's direct
    // conversations cannot be read back and keep what they show.
    restartHistory(state, (conv) => event.clearRooms && conv.kind === "room");
  },
  history_request(state, event) {
    const conv = state.conversations.get(event.key);
    if (conv) conv.history.loading = true;
  },
  history(state, event) {
    const conv = state.conversations.get(event.key);
    if (!conv) return;
    conv.history.loading = false;
    conv.history.loaded = true;
    if (event.failed) {
      conv.history.more = false;
      return;
    }
    // Latest and `before` pages tell whether older messages remain.
    if (event.older) conv.history.more = !!event.more;
    for (const m of event.messages) addById(state, conv, entryOf(state, m), { countUnread: false });
  },
  unread(state, event) {
    for (const c of event.conversations) {
      const conv = c.room ? state.conversations.get(roomKey(c.room))
        : c.with ? ensure(state, dmKey(c.with), "dm", c.with) : null;
      if (!conv) continue;
      conv.readMsgId = Math.max(conv.readMsgId, c.read_msg_id ?? 0);
      conv.unread = conv.key === state.current ? 0 : (c.unread ?? 0);
      // The server counts messages, not mentions: a direct conversation's
      // are all addressed to us.
      if (conv.kind === "dm") conv.mentions = conv.unread;
    }
  },
  read_sent(state, event) {
    const conv = state.conversations.get(event.key);
    if (conv) conv.readMsgId = Math.max(conv.readMsgId, event.msgId);
  },
  sent(state, event) {
    // Our own message, confirmed by the server (it is not echoed to us).
    // `text` is present when a plugin changed it (masked words, a dice
    // roll): show what everyone else sees, not what we typed.
    const p = event.pending;
    const conv = p.broadcast ? state.conversations.get(SERVER_KEY)
      : p.direct ? ensure(state, dmKey(p.to), "dm", p.to)
      : ensure(state, roomKey(p.room), "room", p.room);
    const kind = p.broadcast ? "broadcast" : p.direct ? "direct" : "room";
    const entry = { kind, msgId: event.msgId, ts: event.ts, from: state.me, text: event.text ?? p.text, own: true };
    // Already shown if it was a direct message to ourselves (it arrives,
    // as delivered, before this reply) or came in a history page.
    if (state.features.has("history")) addById(state, conv, entry, { countUnread: false });
    else if (!conv.messages.some((e) => e.msgId === event.msgId && e.own)) append(state, conv, entry);
  },
};
