// The app's state: one plain object, changed only by `update(state, event)`.
// Events come from the connection (see protocol.js) and from the user (see
// main.js). Views read the state and never change it.

/** Most messages kept per conversation; older ones are dropped. */
export const MAX_MESSAGES = 1000;

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
    /** key -> conversation; keys: "#room" (lower case), "@nick" (lower case), SERVER_KEY. */
    conversations: new Map([[SERVER_KEY, conversation(SERVER_KEY, "server", "Server & broadcasts")]]),
    current: SERVER_KEY,
    /** Local sequence for message keys (messages of notices have no msg_id). */
    seq: 0,
  };
}

function conversation(key, kind, name) {
  return { key, kind, name, messages: [], unread: 0, members: [], joined: false };
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
  if (conv.key !== state.current && entry.kind !== "presence" && !entry.own) conv.unread += 1;
}

function sortMembers(members) {
  return [...members].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
}

/** Applies one event to the state; returns the state. */
export function update(state, event) {
  switch (event.type) {
    case "connection": {
      state.connection = event.status;
      state.retryIn = event.retryIn ?? 0;
      if (event.note !== undefined) state.connectionNote = event.note;
      if (event.status !== "open") {
        // Rooms must be joined again on the next connection.
        for (const conv of state.conversations.values()) if (conv.kind === "room") conv.joined = false;
        state.connectBusy = false;
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
    case "identifying":
      state.connectBusy = true;
      state.connectError = "";
      break;
    case "identified":
      state.me = event.nick;
      state.admin = !!event.admin;
      state.loggedIn = !!event.loggedIn;
      state.phase = "chat";
      state.connectBusy = false;
      state.connectError = "";
      break;
    case "identify_failed":
      state.phase = "connect";
      state.connectBusy = false;
      state.connectError = event.message;
      break;
    case "logged_out":
      state.phase = "connect";
      state.me = null;
      state.loggedIn = false;
      for (const conv of state.conversations.values()) if (conv.kind === "room") conv.joined = false;
      break;
    case "nick_changed":
      state.me = event.nick;
      break;
    case "joined": {
      const conv = ensure(state, roomKey(event.room), "room", event.room);
      conv.name = event.room;
      conv.joined = true;
      conv.members = sortMembers(event.members ?? []);
      if (event.select) state.current = conv.key;
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
      const conv = ensure(state, dmKey(event.nick), "dm", event.nick);
      state.current = conv.key;
      conv.unread = 0;
      break;
    }
    case "select": {
      const conv = state.conversations.get(event.key);
      if (conv) {
        state.current = conv.key;
        conv.unread = 0;
      }
      break;
    }
    case "message": {
      const m = event.message;
      const own = sameNick(m.from, state.me);
      let conv;
      if (m.kind === "room") conv = ensure(state, roomKey(m.room), "room", m.room);
      else if (m.kind === "direct") {
        const other = own ? m.to : m.from;
        conv = ensure(state, dmKey(other), "dm", other);
      } else conv = state.conversations.get(SERVER_KEY);
      append(state, conv, { kind: m.kind, msgId: m.msg_id, ts: m.ts, from: m.from, text: m.text, own });
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
      // Already shown if it was a direct message to ourselves: it arrives
      // (as delivered) before this reply.
      if (conv.messages.some((e) => e.msgId === event.msgId && e.own)) break;
      append(state, conv, { kind, msgId: event.msgId, ts: event.ts, from: state.me, text: event.text ?? p.text, own: true });
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
        line = `${p.nick} is now known as ${p.new_nick}`;
      } else break;
      append(state, conv, { kind: "presence", ts: p.ts, text: line });
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
