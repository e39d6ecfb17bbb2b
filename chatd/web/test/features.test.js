// Unit tests of the feature modules' reducers (js/features/*.js): file
// transfers and private rooms, driven through `update` as the app does.

import assert from "node:assert/strict";
import { test } from "node:test";

import { SERVER_KEY, initialState, update } from "../js/state.js";
import { formatSize, progressText } from "../js/features/files.js";
import { eventText, infoText, roleIn } from "../js/features/rooms.js";

function chatting(me = "alice") {
  const state = initialState();
  update(state, { type: "welcome", welcome: { features: ["history", "files", "private_rooms"] } });
  update(state, { type: "identified", nick: me, loggedIn: true });
  return state;
}

const offer = (fields = {}) => ({
  type: "file_available", transfer: "t1", name: "cat.png", size: 2048, sha256: "ab", from: "bob", ...fields,
});

test("an offered file is listed and announced in its conversation", () => {
  const state = chatting();
  update(state, { type: "file_available", frame: offer() });
  const [t] = state.files.transfers.values();
  assert.equal(t.state, "available");
  assert.equal(t.direction, "down");
  assert.equal(t.peer, "bob");
  const dm = state.conversations.get("@bob");
  assert.match(dm.messages[0].text, /^bob sent a file: cat\.png \(2\.0 KB\)/);
  update(state, { type: "joined", room: "#rust", members: [] });
  update(state, { type: "file_available", frame: offer({ transfer: "t2", room: "#Rust" }) });
  assert.match(state.conversations.get("#rust").messages.at(-1).text, /^bob sent a file in #Rust/);
});

test("deliveries and refusals are noted on the transfer", () => {
  const state = chatting();
  update(state, { type: "file_available", frame: offer() });
  update(state, { type: "file_delivered", frame: { transfer: "t1", to: "carol" } });
  update(state, { type: "file_declined", frame: { transfer: "t1", by: "dave" } });
  update(state, { type: "file_removed", frame: { transfer: "t1", reason: "expired" } });
  const t = state.files.transfers.get(1);
  assert.deepEqual(t.notes, ["carol received it", "dave declined it"]);
  assert.equal(t.state, "failed");
  assert.equal(t.error, "The server removed this file (expired).");
});

test("a removed file that was already received stays received", () => {
  const state = chatting();
  update(state, { type: "file_available", frame: offer() });
  update(state, { type: "transfer_changed", key: 1, fields: { state: "ready" } });
  update(state, { type: "file_removed", frame: { transfer: "t1", reason: "expired" } });
  assert.equal(state.files.transfers.get(1).state, "ready");
});

test("a new connection fails uploads in flight and lets downloads start over", () => {
  const state = chatting();
  update(state, { type: "transfer_added", fields: { direction: "up", name: "a", size: 1, peer: "#rust", state: "uploading" } });
  update(state, { type: "file_available", frame: offer() });
  update(state, { type: "transfer_changed", key: 2, fields: { state: "downloading" } });
  update(state, { type: "transfers_interrupted" });
  assert.equal(state.files.transfers.get(1).state, "failed");
  assert.match(state.files.transfers.get(1).error, /send the file again/);
  assert.equal(state.files.transfers.get(2).state, "available");
});

test("failures show the server's words; dismissing removes the transfer", () => {
  const state = chatting();
  update(state, { type: "transfer_added", fields: { direction: "up", name: "a", size: 1, peer: "#rust", state: "offering" } });
  update(state, { type: "transfer_failed", key: 1, reply: { message: "file too large" } });
  assert.equal(state.files.transfers.get(1).error, "File too large");
  update(state, { type: "transfer_preview_toggled", key: 1 });
  assert.equal(state.files.transfers.get(1).preview, true);
  update(state, { type: "transfer_dismissed", key: 1 });
  assert.equal(state.files.transfers.size, 0);
  assert.equal(state.files.nextKey, 2, "keys are not reused");
});

test("progress reads as percent, rate and time left", () => {
  assert.equal(formatSize(512), "512 B");
  assert.equal(formatSize(1536 * 1024), "1.5 MB");
  const t = { size: 1000, done: 500, state: "uploading", startedAt: 1000, finishedAt: 0 };
  assert.equal(progressText(t, 2000), "50% · 500 B/s · 1 s left");
  assert.equal(progressText({ ...t, done: 1000, finishedAt: 3100 }), "100% in 2.1 s");
});

test("an invitation is kept and announced in the server conversation", () => {
  const state = chatting();
  update(state, { type: "room_invitation", frame: { room: "#secret", from: "bob" } });
  assert.equal(state.rooms.invitations.get("#secret"), "bob");
  assert.match(state.conversations.get(SERVER_KEY).messages.at(-1).text, /^bob invited you to the private room #secret/);
  update(state, { type: "room_invitation_answered", room: "#secret" });
  assert.equal(state.rooms.invitations.size, 0);
  update(state, { type: "room_invitations", invitations: [{ room: "#a", from: "carol" }] });
  assert.deepEqual([...state.rooms.invitations], [["#a", "carol"]]);
});

test("being kicked from a private room closes it and says so in the server conversation", () => {
  const state = chatting();
  update(state, { type: "joined", room: "#secret", members: ["alice", "bob"], select: true });
  update(state, { type: "room_info", room: "#secret", info: { room: "#secret", owner: "bob", members: ["alice", "bob"] } });
  update(state, { type: "room_event", frame: { event: "kick", room: "#secret", by: "bob", user: "Alice", reason: "spam" } });
  assert.equal(state.conversations.has("#secret"), false);
  assert.equal(state.rooms.known.size, 0);
  const notice = state.conversations.get(SERVER_KEY).messages.at(-1);
  assert.equal(notice.text, "bob removed you from #secret (spam)");
  assert.equal(notice.error, true);
});

test("someone else's kick replaces their part line; other events are notices in the room", () => {
  const state = chatting();
  update(state, { type: "joined", room: "#secret", members: ["alice", "carol"], select: true });
  update(state, { type: "presence", presence: { room: "#secret", nick: "carol", event: "part" } });
  update(state, { type: "room_event", frame: { event: "ban", room: "#secret", by: "alice", user: "carol" } });
  update(state, { type: "room_event", frame: { event: "topic", room: "#secret", by: "alice", topic: "tea" } });
  const room = state.conversations.get("#secret");
  assert.deepEqual(room.messages.map((m) => m.text), ["alice banned carol from #secret", "alice set the topic of #secret: tea"]);
});

test("a withdrawn invitation is forgotten; a new identity forgets everything", () => {
  const state = chatting();
  update(state, { type: "room_invitation", frame: { room: "#x", from: "bob" } });
  update(state, { type: "room_event", frame: { event: "revoke", room: "#x", by: "bob" } });
  assert.equal(state.rooms.invitations.size, 0);
  update(state, { type: "room_invitation", frame: { room: "#y", from: "bob" } });
  update(state, { type: "room_info", room: "#y", info: { owner: "bob" } });
  update(state, { type: "rooms_identified" });
  assert.equal(state.rooms.invitations.size, 0);
  assert.equal(state.rooms.known.size, 0);
  update(state, { type: "room_info", room: "#y", info: { owner: "bob" } });
  update(state, { type: "room_info", room: "#Y", info: null });
  assert.equal(state.rooms.known.size, 0, "not private after all");
});

test("roles and the words for room events", () => {
  const state = chatting();
  assert.deepEqual(roleIn(state, { owner: "Alice" }).isOwner, true);
  assert.equal(roleIn(state, { owner: "bob", moderators: ["ALICE"] }).isModerator, true);
  assert.equal(roleIn(state, { owner: "bob" }).isModerator, false);
  assert.equal(eventText({ event: "transfer", by: "bob", user: "alice", room: "#r" }, "alice"), "bob handed #r over to alice");
  assert.equal(eventText({ event: "odd", room: "#r" }, "alice"), "odd in #r");
  assert.equal(infoText({ room: "#r", owner: "bob", members: ["bob"], topic: "t" }), "#r: owner bob; members bob; topic: t");
});
