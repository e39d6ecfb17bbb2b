// Unit tests of the app's reducers (js/state.js and js/state/*.js), run by
// `node --test chatd/web/test/*.test.js` (chatd/tests/web_unit.rs runs them in CI).
// They drive `update` with the events main.js dispatches and check what
// the views would show.

import assert from "node:assert/strict";
import { test } from "node:test";

import { SERVER_KEY, initialState, update } from "../js/state.js";
import { conversationReducers } from "../js/state/conversations.js";
import { messageReducers } from "../js/state/messages.js";
import { sessionReducers } from "../js/state/session.js";
import { filesReducers } from "../js/features/files.js";
import { roomsReducers } from "../js/features/rooms.js";

/** A state logged in as `me` on a server with `features`. */
function chatting(me = "alice", features = ["history"]) {
  const state = initialState();
  update(state, { type: "connection", status: "open" });
  update(state, { type: "welcome", welcome: { features } });
  update(state, { type: "identified", nick: me, loggedIn: true });
  return state;
}

function roomMessage(id, from, text, room = "#rust") {
  return { type: "message", kind: "room", room, from, text, msg_id: id, ts: 1000 + id };
}

const texts = (conv) => conv.messages.map((m) => m.text);

test("every event type has one reducer", () => {
  const seen = new Map();
  const all = { sessionReducers, conversationReducers, messageReducers, filesReducers, roomsReducers };
  for (const [module, reducers] of Object.entries(all)) {
    for (const type of Object.keys(reducers)) {
      assert.equal(seen.get(type), undefined, `${type} is handled by both ${seen.get(type)} and ${module}`);
      seen.set(type, module);
    }
  }
});

test("an unknown event changes nothing", () => {
  const state = chatting();
  const before = JSON.stringify({ ...state, conversations: [...state.conversations.values()] });
  update(state, { type: "noop" });
  assert.equal(JSON.stringify({ ...state, conversations: [...state.conversations.values()] }), before);
});

test("a lost connection marks rooms for rejoining and ends requests in flight", () => {
  const state = chatting();
  update(state, { type: "joined", room: "#Rust", members: ["alice"], select: true });
  update(state, { type: "history_request", key: "#rust" });
  update(state, { type: "identifying" });
  update(state, { type: "connection", status: "reconnecting", retryIn: 3, note: "gone" });
  const room = state.conversations.get("#rust");
  assert.equal(room.joined, false);
  assert.equal(room.history.loading, false);
  assert.equal(state.connectBusy, false);
  assert.equal(state.retryIn, 3);
  assert.equal(state.connectionNote, "gone");
  update(state, { type: "connection", status: "open" });
  assert.equal(state.reconnected, true, "back after a loss is said");
  update(state, { type: "reconnected_seen" });
  assert.equal(state.reconnected, false);
});

test("welcome says what the server offers", () => {
  const state = initialState();
  update(state, { type: "welcome", welcome: { features: ["accounts", "registration"], auth_required: true } });
  assert.equal(state.accounts, true);
  assert.equal(state.registration, true);
  assert.equal(state.authRequired, true);
});

test("a failed login goes back to the form with the reason", () => {
  const state = initialState();
  update(state, { type: "identifying" });
  assert.equal(state.connectBusy, true);
  update(state, { type: "identify_failed", message: "Wrong user name or password." });
  assert.equal(state.phase, "connect");
  assert.equal(state.connectBusy, false);
  assert.equal(state.connectError, "Wrong user name or password.");
});

test("logging out forgets the account's conversations but keeps the server's", () => {
  const state = chatting();
  update(state, { type: "joined", room: "#rust", members: ["alice"], select: true });
  update(state, { type: "message", message: roomMessage(7, "bob", "hi") });
  update(state, { type: "logged_out" });
  assert.deepEqual([...state.conversations.keys()], [SERVER_KEY]);
  assert.equal(state.current, SERVER_KEY);
  assert.equal(state.lastMsgId, 0);
  assert.equal(state.me, null);
});

test("joining opens the room with its members sorted; parting opens the next room", () => {
  const state = chatting();
  update(state, { type: "joined", room: "#b", members: ["zed", "Amy", "alice"], select: true });
  update(state, { type: "joined", room: "#a", members: ["alice"], select: true });
  assert.equal(state.current, "#a");
  assert.deepEqual(state.conversations.get("#b").members, ["alice", "Amy", "zed"]);
  update(state, { type: "parted", room: "#A" });
  assert.equal(state.current, "#b");
  assert.equal(state.conversations.has("#a"), false);
});

test("a room the server joins us to again opens only when nothing else is open", () => {
  const state = chatting();
  update(state, { type: "joined", room: "#one", members: [], rejoined: true });
  assert.equal(state.current, "#one");
  update(state, { type: "joined", room: "#two", members: [], rejoined: true });
  assert.equal(state.current, "#one");
});

test("the server conversation cannot be closed", () => {
  const state = chatting();
  update(state, { type: "close_conversation", key: SERVER_KEY });
  assert.equal(state.conversations.has(SERVER_KEY), true);
  update(state, { type: "open_dm", nick: "Bob" });
  assert.equal(state.current, "@bob");
  update(state, { type: "close_conversation", key: "@bob" });
  assert.equal(state.current, SERVER_KEY);
});

test("presence keeps the member list and says who came and went", () => {
  const state = chatting();
  update(state, { type: "joined", room: "#rust", members: ["alice"], select: true });
  update(state, { type: "presence", presence: { room: "#rust", nick: "bob", event: "join" } });
  update(state, { type: "presence", presence: { room: "#rust", nick: "bob", event: "nick", new_nick: "rob" } });
  update(state, { type: "presence", presence: { room: "#rust", nick: "rob", event: "part", reason: "bye" } });
  const room = state.conversations.get("#rust");
  assert.deepEqual(room.members, ["alice"]);
  assert.deepEqual(texts(room), ["bob joined #rust", "bob is now known as rob", "rob left #rust (bye)"]);
  update(state, { type: "presence", presence: { room: "#rust", nick: "alice", event: "nick", new_nick: "al" } });
  assert.equal(room.messages.at(-1).text, "You are now known as al");
});

test("a kick replaces the part line it caused", () => {
  const state = chatting();
  update(state, { type: "joined", room: "#rust", members: ["alice", "bob"], select: true });
  update(state, { type: "presence", presence: { room: "#rust", nick: "bob", event: "part" } });
  update(state, { type: "removed_from_room", room: "#rust", user: "bob", text: "alice removed bob from #rust" });
  assert.deepEqual(texts(state.conversations.get("#rust")), ["alice removed bob from #rust"]);
});

test("listings are notices in the conversation that asked", () => {
  const state = chatting();
  update(state, { type: "joined", room: "#rust", members: ["alice"], select: true });
  update(state, { type: "users", room: "#rust", users: ["bob", "alice"], key: "#rust" });
  update(state, { type: "rooms", rooms: [], key: SERVER_KEY });
  assert.deepEqual(state.conversations.get("#rust").members, ["alice", "bob"]);
  assert.equal(state.conversations.get("#rust").messages.at(-1).text, "2 in #rust: bob, alice");
  assert.equal(state.conversations.get(SERVER_KEY).messages.at(-1).text, "No rooms yet. Create one with /join #name.");
});

test("messages are kept in msg_id order, once, and counted unread elsewhere", () => {
  const state = chatting();
  update(state, { type: "joined", room: "#rust", members: ["alice"] });
  update(state, { type: "message", message: roomMessage(5, "bob", "five") });
  update(state, { type: "message", message: roomMessage(3, "bob", "three, alice?") });
  update(state, { type: "message", message: roomMessage(5, "bob", "five") });
  const room = state.conversations.get("#rust");
  assert.deepEqual(texts(room), ["three, alice?", "five"]);
  assert.equal(room.unread, 2);
  assert.equal(room.mentions, 1, "the message naming alice is a mention");
  assert.equal(state.lastMsgId, 5);
  update(state, { type: "select", key: "#rust" });
  assert.equal(room.unread, 0);
  assert.equal(room.markerSeq, room.messages[0].seq, "the new-messages line is above the first unread");
});

test("every unread direct message is for us", () => {
  const state = chatting();
  update(state, { type: "message", message: { type: "message", kind: "direct", from: "bob", to: "alice", text: "psst", msg_id: 9 } });
  const dm = state.conversations.get("@bob");
  assert.equal(dm.unread, 1);
  assert.equal(dm.mentions, 1);
});

test("our own message appears once confirmed, with the text the server kept", () => {
  const state = chatting();
  update(state, { type: "joined", room: "#rust", members: ["alice"], select: true });
  const pending = { kind: "message", room: "#rust", text: "darn" };
  update(state, { type: "sent", pending, msgId: 4, ts: 1, text: "d**n" });
  update(state, { type: "sent", pending, msgId: 4, ts: 1, text: "d**n" });
  const room = state.conversations.get("#rust");
  assert.deepEqual(texts(room), ["d**n"]);
  assert.equal(room.messages[0].own, true);
  assert.equal(room.unread, 0);
});

test("history pages fill in before what is shown and say whether more is left", () => {
  const state = chatting();
  update(state, { type: "joined", room: "#rust", members: ["alice"], select: true });
  update(state, { type: "message", message: roomMessage(10, "bob", "ten") });
  update(state, { type: "history_request", key: "#rust" });
  const room = state.conversations.get("#rust");
  assert.equal(room.history.loading, true);
  const page = [roomMessage(8, "bob", "eight"), roomMessage(9, "carol", "nine"), roomMessage(10, "bob", "ten")];
  update(state, { type: "history", key: "#rust", messages: page, more: false, older: true });
  assert.deepEqual(texts(room), ["eight", "nine", "ten"]);
  assert.deepEqual(room.history, { loaded: true, loading: false, more: false });
  assert.equal(room.unread, 0, "history is not news");
  update(state, { type: "history", key: "#rust", failed: true });
  assert.equal(room.history.more, false);
});

test("a resume gap starts conversations over; a reload clears only rooms", () => {
  const state = chatting();
  update(state, { type: "joined", room: "#rust", members: ["alice"], select: true });
  update(state, { type: "message", message: roomMessage(1, "bob", "one") });
  update(state, { type: "message", message: { kind: "direct", from: "bob", to: "alice", text: "dm", msg_id: 2 } });
  update(state, { type: "notice", key: "#rust", text: "a notice" });
  update(state, { type: "history_reload", clearRooms: true });
  assert.deepEqual(texts(state.conversations.get("#rust")), ["a notice"]);
  assert.deepEqual(texts(state.conversations.get("@bob")), ["dm"]);
  assert.equal(state.conversations.get("@bob").history.loaded, false);
  update(state, { type: "resumed_gap" });
  assert.deepEqual(texts(state.conversations.get("@bob")), []);
});

test("missed messages are not counted: the server's unread counts are", () => {
  const state = chatting();
  update(state, { type: "joined", room: "#rust", members: ["alice"] });
  update(state, { type: "missed", messages: [roomMessage(3, "bob", "while away")] });
  const room = state.conversations.get("#rust");
  assert.equal(room.unread, 0);
  update(state, { type: "unread", conversations: [{ room: "#rust", unread: 4, read_msg_id: 2 }, { with: "carol", unread: 2 }] });
  assert.equal(room.unread, 4);
  assert.equal(room.readMsgId, 2);
  assert.equal(state.conversations.get("@carol").mentions, 2);
  update(state, { type: "read_sent", key: "#rust", msgId: 3 });
  assert.equal(room.readMsgId, 3);
});

test("a notice about a direct conversation opens it", () => {
  const state = chatting();
  update(state, { type: "notice", key: "@bob", dm: "bob", text: "bob is not connected", error: true });
  const dm = state.conversations.get("@bob");
  assert.equal(dm.messages[0].text, "bob is not connected");
  assert.equal(dm.messages[0].error, true);
});

test("the member menu is state, opened and closed by events", () => {
  const state = chatting();
  update(state, { type: "member_menu", nick: "bob" });
  assert.equal(state.memberMenu, "bob");
  update(state, { type: "member_menu", nick: null });
  assert.equal(state.memberMenu, null);
});
