// The conversations in the app's state and the small operations the
// reducers (state/*.js, features/*.js) share on them: keys, adding a
// message in order, counting unread ones, notices. Pure functions of the
// state object they are given; nothing here touches the DOM.

/** Most messages kept per conversation as they arrive; older ones are
 * dropped (history the reader scrolls back to is kept on top of this). */
export const MAX_MESSAGES = 1000;

/** Messages asked for per `history` page. */
export const HISTORY_PAGE = 50;

/** The conversation holding broadcasts and server notices. */
export const SERVER_KEY = "*server";

/** A new, empty conversation: a room ("#name"), a direct one ("@nick") or the server's. */
export function conversation(key, kind, name) {
  return {
    key, kind, name, messages: [], unread: 0, members: [], joined: false,
    /** Unread messages that mention us (every unread one in a direct
     * conversation counts). */
    mentions: 0,
    /** `seq` of the first message not yet read when the conversation was
     * opened: the "new messages" line goes above it. */
    markerSeq: null,
    /** Stored history: asked for (latest page) once shown; `more` while
     * older messages exist; `loading` while a request is out. */
    history: { loaded: false, loading: false, more: true },
    /** The read marker the server has (from `unread`, or our `read`). */
    readMsgId: 0,
    /** Bumped when messages are inserted other than at the end (history,
     * missed), so that the view redraws the list instead of appending. */
    version: 0,
  };
}

export function roomKey(room) {
  return room.toLowerCase();
}

export function dmKey(nick) {
  return "@" + nick.toLowerCase();
}

/** Whether two nicknames are the same person (nicknames ignore case). */
export function sameNick(a, b) {
  return a != null && b != null && a.toLowerCase() === b.toLowerCase();
}

/** The conversation `key`, created (empty) when it is not there yet. */
export function ensure(state, key, kind, name) {
  let conv = state.conversations.get(key);
  if (!conv) {
    conv = conversation(key, kind, name);
    state.conversations.set(key, conv);
  }
  return conv;
}

/** Adds a message at the end, counting it as unread (and perhaps a
 * mention) unless its conversation is open. */
export function append(state, conv, entry) {
  entry.seq = ++state.seq;
  conv.messages.push(entry);
  if (conv.messages.length > MAX_MESSAGES) conv.messages.splice(0, conv.messages.length - MAX_MESSAGES);
  if (conv.key !== state.current && entry.kind !== "presence" && !entry.own) {
    conv.unread += 1;
    if (entry.mention || (conv.kind === "dm" && entry.from)) conv.mentions += 1;
  }
}

/** Whether `text` names `nick` as a word of its own (any case). */
export function mentions(text, nick) {
  if (!nick || typeof text !== "string") return false;
  const escaped = nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\p{L}\\p{N}_-])${escaped}($|[^\\p{L}\\p{N}_-])`, "iu").test(text);
}

/** Opens a conversation: unread counts go, and the "new messages" line
 * marks where reading starts again. */
export function openConversation(state, conv) {
  state.current = conv.key;
  conv.markerSeq = null;
  if (conv.unread > 0) {
    let left = conv.unread;
    for (let i = conv.messages.length - 1; i >= 0 && left > 0; i--) {
      const m = conv.messages[i];
      if (m.kind === "presence" || m.own || m.kind === "notice") continue;
      conv.markerSeq = m.seq;
      left -= 1;
    }
  }
  conv.unread = 0;
  conv.mentions = 0;
}

/** The newest msg_id of a conversation (0 when none). */
export function newestMsgId(conv) {
  for (let i = conv.messages.length - 1; i >= 0; i--) {
    if (conv.messages[i].msgId !== undefined) return conv.messages[i].msgId;
  }
  return 0;
}

/** The oldest msg_id of a conversation (null when none). */
export function oldestMsgId(conv) {
  for (const m of conv.messages) if (m.msgId !== undefined) return m.msgId;
  return null;
}

/** Remembers the newest msg_id seen, for a resume after a reconnect. */
export function seen(state, msgId) {
  if (typeof msgId === "number" && msgId > state.lastMsgId) state.lastMsgId = msgId;
}

/**
 * Adds a message with a msg_id where it belongs (in msg_id order), unless
 * the conversation has it already: history pages, missed messages and live
 * ones may overlap. Returns whether it was added.
 */
export function addById(state, conv, entry, { countUnread }) {
  seen(state, entry.msgId);
  if (conv.messages.some((e) => e.msgId === entry.msgId)) return false;
  const at = conv.messages.findIndex((e) => e.msgId !== undefined && e.msgId > entry.msgId);
  if (at === -1) {
    if (countUnread) append(state, conv, entry);
    else {
      entry.seq = ++state.seq;
      conv.messages.push(entry);
    }
  } else {
    entry.seq = ++state.seq;
    conv.messages.splice(at, 0, entry);
    conv.version += 1;
    if (countUnread && conv.key !== state.current && !entry.own) {
      conv.unread += 1;
      if (entry.mention || conv.kind === "dm") conv.mentions += 1;
    }
  }
  return true;
}

/** The conversation a stored or live `message` belongs to. */
export function conversationOf(state, m) {
  const own = sameNick(m.from, state.me);
  if (m.kind === "room") return ensure(state, roomKey(m.room), "room", m.room);
  if (m.kind === "direct") {
    const other = own ? m.to : m.from;
    return ensure(state, dmKey(other), "dm", other);
  }
  return state.conversations.get(SERVER_KEY);
}

/** A stored or live `message` frame as an entry of a conversation. */
export function entryOf(state, m) {
  const own = sameNick(m.from, state.me);
  return { kind: m.kind, msgId: m.msg_id, ts: m.ts, from: m.from, text: m.text, own, mention: !own && mentions(m.text, state.me) };
}

/** Members in the order the list shows them (by name, any case). */
export function sortMembers(members) {
  return [...members].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
}

/** A notice in the conversation `key` (the open one when none). */
export function noticeIn(state, key, text, error = false) {
  const conv = state.conversations.get(key ?? state.current) ?? state.conversations.get(SERVER_KEY);
  append(state, conv, { kind: "notice", ts: Date.now(), text, error });
  if (conv.key === state.current) conv.unread = 0;
}

/** What opens when the open conversation goes: the first room, else the server's. */
export function firstConversation(state) {
  for (const conv of state.conversations.values()) if (conv.kind === "room") return conv.key;
  return SERVER_KEY;
}

/** The rooms to join again after a reconnect, by name. */
export function roomsToRejoin(state) {
  return [...state.conversations.values()].filter((c) => c.kind === "room").map((c) => c.name);
}
