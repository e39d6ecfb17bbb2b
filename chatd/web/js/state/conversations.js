// Reducers of the sidebar's conversations and their members: joining and
// leaving rooms, opening and closing conversations, presence, listings and
// notices.

import {
  SERVER_KEY, append, dmKey, ensure, firstConversation, noticeIn, openConversation, roomKey, sameNick, sortMembers,
} from "./model.js";

export const conversationReducers = {
  joined(state, event) {
    const conv = ensure(state, roomKey(event.room), "room", event.room);
    conv.name = event.room;
    conv.joined = true;
    conv.members = sortMembers(event.members ?? []);
    // A room the server joined us to again (after a resume or login)
    // opens when nothing else is open yet.
    if (event.select || (event.rejoined && state.current === SERVER_KEY)) openConversation(state, conv);
  },
  parted(state, event) {
    const key = roomKey(event.room);
    state.conversations.delete(key);
    if (state.current === key) state.current = firstConversation(state);
  },
  close_conversation(state, event) {
    if (event.key === SERVER_KEY) return;
    state.conversations.delete(event.key);
    if (state.current === event.key) state.current = firstConversation(state);
  },
  open_dm(state, event) {
    openConversation(state, ensure(state, dmKey(event.nick), "dm", event.nick));
  },
  select(state, event) {
    const conv = state.conversations.get(event.key);
    if (conv) openConversation(state, conv);
  },
  presence(state, event) {
    const p = event.presence;
    const conv = state.conversations.get(roomKey(p.room));
    if (!conv) return;
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
    } else return;
    append(state, conv, { kind: "presence", ts: p.ts, text: line, nick: p.nick, event: p.event });
  },
  removed_from_room(state, event) {
    // A kick or ban: the room saw `presence part` first; the moderator's
    // words replace that line, so that one event is one line.
    const conv = state.conversations.get(roomKey(event.room));
    if (!conv) return;
    const part = conv.messages.findLast((e) => e.kind === "presence" && e.event === "part" && sameNick(e.nick, event.user));
    if (part) {
      part.text = event.text;
      part.event = "removed";
      conv.version += 1;
    } else append(state, conv, { kind: "presence", ts: Date.now(), text: event.text });
  },
  users(state, event) {
    if (event.room) {
      const conv = state.conversations.get(roomKey(event.room));
      if (conv) conv.members = sortMembers(event.users);
    }
    const where = event.room ? `in ${event.room}` : "connected";
    noticeIn(state, event.key, `${event.users.length} ${where}: ${event.users.join(", ")}`);
  },
  rooms(state, event) {
    const lines = event.rooms.map((r) => `${r.name} (${r.members})${r.topic ? ` — ${r.topic}` : ""}`);
    noticeIn(state, event.key, event.rooms.length ? `Rooms: ${lines.join(", ")}` : "No rooms yet. Create one with /join #name.");
  },
  notice(state, event) {
    // A notice about a direct conversation opens it in the sidebar.
    if (event.dm) ensure(state, dmKey(event.dm), "dm", event.dm);
    noticeIn(state, event.key, event.text, event.error);
  },
  /** The member list's menu: open for one member (lower case) or none. */
  member_menu(state, event) {
    state.memberMenu = event.nick;
  },
};
