// The app's state: one plain object, changed only by `update(state, event)`.
// Events come from the connection (see protocol.js) and from the user (see
// main.js). Views read the state and never change it.

/** Most messages kept per conversation as they arrive; older ones are
 * dropped (history the reader scrolls back to is kept on top of this). */
export const MAX_MESSAGES = 1000;

/** Messages asked for per `history` page. */
export const HISTORY_PAGE = 50;

/** The conversation holding broadcasts and server notices. */
export const SERVER_KEY = "*server";

export function initialState() {
  return {
    /** "connecting" | "open" | "reconnecting" | "offline" */
    connection: "connecting",
    /** Seconds until the next reconnect attempt, while reconnecting. */
    retryIn: 0,
    /** Why the connection was lost, in words. */
    connectionNote: "",
    /** The server's `welcome` frame, once received. */
    welcome: null,
    features: new Set(),
    authRequired: false,
    /** The server has accounts (login, and perhaps registration). */
    accounts: false,
    registration: false,
    /** "connect" (the connect screen) or "chat". */
    phase: "connect",
    /** Our nickname once the server accepted it. */
    me: null,
    admin: false,
    loggedIn: false,
    connectError: "",
    connectBusy: false,
    /** A `resume` is on its way (the cookie may log us in without a form). */
    resuming: false,
    /** The newest msg_id seen (message, sent, history, missed): what a
     * resume after a reconnect asks the server to continue from. */
    lastMsgId: 0,
    /** key -> conversation; keys: "#room" (lower case), "@nick" (lower case), SERVER_KEY. */
    conversations: new Map([[SERVER_KEY, conversation(SERVER_KEY, "server", "Server & broadcasts")]]),
    current: SERVER_KEY,
    /** Local sequence for message keys (messages of notices have no msg_id). */
    seq: 0,
    /** The connection came back after being lost: "Reconnected" is shown
     * for a moment. */
    reconnected: false,
  };
}

function conversation(key, kind, name) {
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

function sameNick(a, b) {
  return a != null && b != null && a.toLowerCase() === b.toLowerCase();
}

function ensure(state, key, kind, name) {
  let conv = state.conversations.get(key);
  if (!conv) {
    conv = conversation(key, kind, name);
    state.conversations.set(key, conv);
  }
  return conv;
}

function append(state, conv, entry) {
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
function openConversation(state, conv) {
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

function seen(state, msgId) {
  if (typeof msgId === "number" && msgId > state.lastMsgId) state.lastMsgId = msgId;
}

/**
 * Adds a message with a msg_id where it belongs (in msg_id order), unless
 * the conversation has it already: history pages, missed messages and live
 * ones may overlap. Returns whether it was added.
 */
function addById(state, conv, entry, { countUnread }) {
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
function conversationOf(state, m) {
  const own = sameNick(m.from, state.me);
  if (m.kind === "room") return ensure(state, roomKey(m.room), "room", m.room);
  if (m.kind === "direct") {
    const other = own ? m.to : m.from;
    return ensure(state, dmKey(other), "dm", other);
  }
  return state.conversations.get(SERVER_KEY);
}

function entryOf(state, m) {
  const own = sameNick(m.from, state.me);
  return { kind: m.kind, msgId: m.msg_id, ts: m.ts, from: m.from, text: m.text, own, mention: !own && mentions(m.text, state.me) };
}

function sortMembers(members) {
  return [...members].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
}

/** Applies one event to the state; returns the state. */
export function update(state, event) {
  switch (event.type) {
    case "connection": {
      // Back after a loss: said for a moment (main.js clears it).
      if (event.status === "open" && (state.connection === "reconnecting" || state.connection === "offline")) state.reconnected = true;
      if (event.status !== "open") state.reconnected = false;
      state.connection = event.status;
      state.retryIn = event.retryIn ?? 0;
      if (event.note !== undefined) state.connectionNote = event.note;
      if (event.status !== "open") {
        // Rooms must be joined again on the next connection.
        for (const conv of state.conversations.values()) {
          if (conv.kind === "room") conv.joined = false;
          // Requests in flight are lost with the connection.
          conv.history.loading = false;
        }
        state.connectBusy = false;
        state.resuming = false;
      }
      break;
    }
    case "welcome": {
      const w = event.welcome;
      state.welcome = w;
      state.features = new Set(w.features ?? []);
      state.authRequired = !!w.auth_required;
      state.accounts = state.features.has("accounts");
      state.registration = state.features.has("registration");
      break;
    }
    case "reconnected_seen":
      state.reconnected = false;
      break;
    case "identifying":
      state.connectBusy = true;
      state.connectError = "";
      break;
    case "resuming":
      state.resuming = true;
      state.connectError = "";
      break;
    case "identified":
      state.me = event.nick;
      state.admin = !!event.admin;
      state.loggedIn = !!event.loggedIn;
      state.phase = "chat";
      state.connectBusy = false;
      state.resuming = false;
      state.connectError = "";
      break;
    case "identify_failed":
      state.phase = "connect";
      state.connectBusy = false;
      state.resuming = false;
      state.connectError = event.message;
      break;
    case "logged_out": {
      state.phase = "connect";
      state.me = null;
      state.loggedIn = false;
      state.resuming = false;
      // What this account saw is not for whoever logs in next.
      const server = state.conversations.get(SERVER_KEY);
      state.conversations = new Map([[SERVER_KEY, server]]);
      state.current = SERVER_KEY;
      state.lastMsgId = 0;
      break;
    }
    case "nick_changed":
      state.me = event.nick;
      break;
    case "joined": {
      const conv = ensure(state, roomKey(event.room), "room", event.room);
      conv.name = event.room;
      conv.joined = true;
      conv.members = sortMembers(event.members ?? []);
      // A room the server joined us to again (after a resume or login)
      // opens when nothing else is open yet.
      if (event.select || (event.rejoined && state.current === SERVER_KEY)) openConversation(state, conv);
      break;
    }
    case "parted": {
      const key = roomKey(event.room);
      state.conversations.delete(key);
      if (state.current === key) state.current = firstConversation(state);
      break;
    }
    case "close_conversation": {
      if (event.key === SERVER_KEY) break;
      state.conversations.delete(event.key);
      if (state.current === event.key) state.current = firstConversation(state);
      break;
    }
    case "open_dm": {
      openConversation(state, ensure(state, dmKey(event.nick), "dm", event.nick));
      break;
    }
    case "select": {
      const conv = state.conversations.get(event.key);
      if (conv) openConversation(state, conv);
      break;
    }
    case "message": {
      const m = event.message;
      const conv = conversationOf(state, m);
      // Without stored history a server may hand out ids again after a
      // restart: only then are they no reliable key.
      if (state.features.has("history") && typeof m.msg_id === "number") addById(state, conv, entryOf(state, m), { countUnread: true });
      else append(state, conv, entryOf(state, m));
      break;
    }
    case "missed": {
      // Messages sent while we were away, oldest first; `unread` follows
      // with the server's counts.
      for (const m of event.messages) addById(state, conversationOf(state, m), entryOf(state, m), { countUnread: false });
      break;
    }
    case "resumed_gap": {
      // More was missed than the server sends at once: start each
      // conversation over from its latest page (scrolling up reads back).
      for (const conv of state.conversations.values()) {
        if (conv.kind === "server") continue;
        conv.messages = conv.messages.filter((e) => e.msgId === undefined);
        conv.history = { loaded: false, loading: false, more: true };
        conv.version += 1;
      }
      break;
    }
    case "history_reload": {
      // After logging in again without a resume point: each conversation
      // asks for its latest page again when shown. Rooms start over from
      // it (their whole history can be read back), so that no gap hides
      // between what was shown and the latest page; a guest's direct
      // conversations cannot be read back and keep what they show.
      for (const conv of state.conversations.values()) {
        if (conv.kind === "server") continue;
        conv.history = { loaded: false, loading: false, more: true };
        if (event.clearRooms && conv.kind === "room") {
          conv.messages = conv.messages.filter((e) => e.msgId === undefined);
          conv.version += 1;
        }
      }
      break;
    }
    case "history_request": {
      const conv = state.conversations.get(event.key);
      if (conv) conv.history.loading = true;
      break;
    }
    case "history": {
      const conv = state.conversations.get(event.key);
      if (!conv) break;
      conv.history.loading = false;
      conv.history.loaded = true;
      if (event.failed) {
        conv.history.more = false;
        break;
      }
      // Latest and `before` pages tell whether older messages remain.
      if (event.older) conv.history.more = !!event.more;
      for (const m of event.messages) addById(state, conv, entryOf(state, m), { countUnread: false });
      break;
    }
    case "unread": {
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
      break;
    }
    case "read_sent": {
      const conv = state.conversations.get(event.key);
      if (conv) conv.readMsgId = Math.max(conv.readMsgId, event.msgId);
      break;
    }
    case "sent": {
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
      break;
    }
    case "presence": {
      const p = event.presence;
      const conv = state.conversations.get(roomKey(p.room));
      if (!conv) break;
      const without = conv.members.filter((n) => !sameNick(n, p.nick));
      let line;
      if (p.event === "join") {
        conv.members = sortMembers([...without, p.nick]);
        line = `${p.nick} joined ${p.room}`;
      } else if (p.event === "part" || p.event === "quit") {
        conv.members = without;
        const verb = p.event === "part" ? `left ${p.room}` : "disconnected";
        line = `${p.nick} ${verb}${p.reason ? ` (${p.reason})` : ""}`;
      } else if (p.event === "nick") {
        conv.members = sortMembers([...without, p.new_nick]);
        const mine = sameNick(p.nick, state.me) || sameNick(p.new_nick, state.me);
        line = mine ? `You are now known as ${p.new_nick}` : `${p.nick} is now known as ${p.new_nick}`;
      } else break;
      append(state, conv, { kind: "presence", ts: p.ts, text: line, nick: p.nick, event: p.event });
      break;
    }
    case "removed_from_room": {
      // A kick or ban: the room saw `presence part` first; the moderator's
      // words replace that line, so that one event is one line.
      const conv = state.conversations.get(roomKey(event.room));
      if (!conv) break;
      const part = conv.messages.findLast((e) => e.kind === "presence" && e.event === "part" && sameNick(e.nick, event.user));
      if (part) {
        part.text = event.text;
        part.event = "removed";
        conv.version += 1;
      } else append(state, conv, { kind: "presence", ts: Date.now(), text: event.text });
      break;
    }
    case "users": {
      if (event.room) {
        const conv = state.conversations.get(roomKey(event.room));
        if (conv) conv.members = sortMembers(event.users);
      }
      const where = event.room ? `in ${event.room}` : "connected";
      noticeIn(state, event.key, `${event.users.length} ${where}: ${event.users.join(", ")}`);
      break;
    }
    case "rooms": {
      const lines = event.rooms.map((r) => `${r.name} (${r.members})${r.topic ? ` — ${r.topic}` : ""}`);
      noticeIn(state, event.key, event.rooms.length ? `Rooms: ${lines.join(", ")}` : "No rooms yet. Create one with /join #name.");
      break;
    }
    case "notice":
      // A notice about a direct conversation opens it in the sidebar.
      if (event.dm) ensure(state, dmKey(event.dm), "dm", event.dm);
      noticeIn(state, event.key, event.text, event.error);
      break;
    default:
      break;
  }
  return state;
}

function noticeIn(state, key, text, error = false) {
  const conv = state.conversations.get(key ?? state.current) ?? state.conversations.get(SERVER_KEY);
  append(state, conv, { kind: "notice", ts: Date.now(), text, error });
  if (conv.key === state.current) conv.unread = 0;
}

function firstConversation(state) {
  for (const conv of state.conversations.values()) if (conv.kind === "room") return conv.key;
  return SERVER_KEY;
}

/** The rooms to join again after a reconnect, by name. */
export function roomsToRejoin(state) {
  return [...state.conversations.values()].filter((c) => c.kind === "room").map((c) => c.name);
}
