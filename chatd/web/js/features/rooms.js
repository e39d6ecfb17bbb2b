// Private rooms, when the server has the `rooms` plugin (docs/protocol.md,
// "Private rooms frames"): create, invite, accept or decline, leave, and the
// moderation actions (kick, ban, unban, topic, promote, demote, transfer,
// delete) as buttons and slash commands. Accounts only: guests are told so.
//
// What the app knows of private rooms lives in `state.rooms` and changes
// only through the reducers below; requests are effects that dispatch
// their replies, and `view` draws the panels from the state.

import { SERVER_KEY, noticeIn, roomKey, sameNick } from "../state/model.js";
import { conversationReducers } from "../state/conversations.js";
import { $, el } from "../view/dom.js";

/** The part of the initial state this module owns. */
export function initialRooms() {
  return {
    /** Pending invitations: room name -> who invited. */
    invitations: new Map(),
    /** What we know of private rooms we are in: lower-case name -> room_info. */
    known: new Map(),
  };
}

/** The words a room event is shown with, for `me`. */
export function eventText(e, me) {
  const aboutMe = sameNick(e.user, me);
  const reason = e.reason ? ` (${e.reason})` : "";
  return {
    kick: `${e.by} removed ${aboutMe ? "you" : e.user} from ${e.room}${reason}`,
    ban: `${e.by} banned ${aboutMe ? "you" : e.user} from ${e.room}${reason}`,
    topic: e.topic ? `${e.by} set the topic of ${e.room}: ${e.topic}` : `${e.by} cleared the topic of ${e.room}`,
    promote: `${e.by} made ${e.user} a moderator of ${e.room}`,
    demote: `${e.by} made ${e.user} a plain member of ${e.room}`,
    transfer: `${e.by} handed ${e.room} over to ${e.user}`,
    delete: `${e.by} deleted the room ${e.room}`,
    revoke: `${e.by} withdrew your invitation to ${e.room}`,
  }[e.event] ?? `${e.event} in ${e.room}`;
}

export const roomsReducers = {
  room_invitation(state, { frame }) {
    state.rooms.invitations.set(frame.room, frame.from);
    // Not about the conversation open: the server view keeps it.
    noticeIn(state, SERVER_KEY, `${frame.from} invited you to the private room ${frame.room}. Accept or decline it in the sidebar.`);
  },
  room_invitations(state, { invitations }) {
    state.rooms.invitations = new Map(invitations.map((i) => [i.room, i.from]));
  },
  room_invitation_answered(state, { room }) {
    state.rooms.invitations.delete(room);
  },
  /** A `room_info` reply (`info`), or null: the room is not private. */
  room_info(state, { room, info }) {
    if (info) state.rooms.known.set(roomKey(room), info);
    else state.rooms.known.delete(roomKey(room));
  },
  /** A new identity: what the last one knew does not carry over. */
  rooms_identified(state) {
    state.rooms.invitations.clear();
    state.rooms.known.clear();
  },
  room_left(state, { room }) {
    state.rooms.known.delete(roomKey(room));
    conversationReducers.parted(state, { room });
  },
  room_event(state, { frame: e }) {
    const text = eventText(e, state.me);
    const aboutMe = sameNick(e.user, state.me);
    const gone = e.event === "delete" || ((e.event === "kick" || e.event === "ban") && aboutMe);
    if (e.event === "revoke") state.rooms.invitations.delete(e.room);
    if (gone) {
      state.rooms.known.delete(roomKey(e.room));
      conversationReducers.parted(state, { room: e.room });
      // The room is gone from the sidebar: the server view keeps the news.
      noticeIn(state, SERVER_KEY, text, true);
    } else if (e.event === "kick" || e.event === "ban") {
      conversationReducers.removed_from_room(state, { room: e.room, user: e.user, text });
    } else {
      noticeIn(state, roomKey(e.room), text);
    }
  },
};

/** Who may do what in a known private room, for the user we are. */
export function roleIn(state, known) {
  const isOwner = sameNick(known.owner, state.me);
  const moderators = (known.moderators ?? []).map((m) => m.toLowerCase());
  const isModerator = isOwner || moderators.includes(state.me?.toLowerCase()) || state.admin;
  return { isOwner, isModerator, moderators };
}

/** The member menu's moderation actions, for those allowed them. */
function memberActions(state, conv, nick, app) {
  const known = conv?.kind === "room" ? state.rooms.known.get(roomKey(conv.name)) : null;
  if (!known) return [];
  const me = state.me?.toLowerCase();
  const lower = nick.toLowerCase();
  const { isOwner, moderators } = roleIn(state, known);
  const targetIsModerator = moderators.includes(lower);
  const mayModerate = isOwner || state.admin || (moderators.includes(me) && !targetIsModerator);
  if (lower === known.owner.toLowerCase() || !mayModerate) return [];
  const room = conv.name;
  const actions = [
    { label: "Kick", run: () => act(app, "room_kick", room, { user: nick }) },
    { label: "Ban", run: () => act(app, "room_ban", room, { user: nick }) },
  ];
  if (isOwner || state.admin) {
    actions.push(targetIsModerator
      ? { label: "Demote", run: () => act(app, "room_demote", room, { user: nick }) }
      : { label: "Promote", run: () => act(app, "room_promote", room, { user: nick }) });
  }
  return actions;
}

function usage(app, text) {
  app.notice(`Usage: ${text}`, true);
  return false;
}

function currentRoom(state) {
  const conv = state.conversations.get(state.current);
  return conv?.kind === "room" ? conv.name : null;
}

function withRoom(app, action) {
  const room = currentRoom(app.state);
  if (!room) return usage(app, "open the private room first");
  return action(room);
}

/** `#room` from a command's argument (the `#` may be left out), or "". */
function roomArg(args) {
  const word = args.trim().split(/\s+/)[0] ?? "";
  return word ? (word.startsWith("#") ? word : `#${word}`) : "";
}

/** `nick [#room]`: the room named, else the current one. */
function withUserAndRoom(app, args, text, action) {
  const [user, room, ...extra] = args.trim().split(/\s+/);
  if (!user || extra.length) return usage(app, text);
  if (room) return action(room.startsWith("#") ? room : `#${room}`, user);
  return withRoom(app, (current) => action(current, user));
}

/** `nick [reason]` about the current room. */
function withRoomAndUser(app, args, text, action) {
  const [user, ...rest] = args.trim().split(/\s+/);
  if (!user) return usage(app, text);
  return withRoom(app, (room) => action(room, user, rest.join(" ")));
}

/** `/topic`: shows it; `/topic --clear` clears it; `/topic text` sets it. */
function topic(app, room, text) {
  if (text === "") {
    const known = app.state.rooms.known.get(roomKey(room));
    app.notice(known?.topic ? `The topic of ${room}: ${known.topic}` : `${room} has no topic.`);
    return true;
  }
  return act(app, "room_topic", room, { topic: text === "--clear" ? "" : text });
}

function firstInvitation(state) {
  return state.rooms.invitations.keys().next().value ?? "";
}

/** Sends a room_* request; shows `done` (or the server's error) as a notice. */
function act(app, type, room, fields, done, then) {
  const sent = app.request({ type, room, ...fields }, (reply) => {
    if (reply.type === "error") return app.notice(reply.message, true);
    if (done) app.notice(done);
    then?.(reply);
    if (app.state.rooms.known.has(roomKey(room))) info(app, room, false);
  });
  if (!sent) app.notice("Not connected right now; try again when the connection is back.", true);
  return sent;
}

/** `/leave`: ends the membership of a private room (`room_leave`); in a
 * public room, where there is no membership, it is `/part`. */
function leave(app, room) {
  if (!app.state.rooms.known.has(roomKey(room))) return app.submit(`/part ${room}`);
  const sent = app.request({ type: "room_leave", room }, (reply) => {
    if (reply.type === "error") return app.notice(reply.message, true);
    app.dispatch({ type: "room_left", room });
    app.notice(`You are no longer a member of ${room}.`, false, SERVER_KEY);
  });
  if (!sent) app.notice("Not connected right now; try again when the connection is back.", true);
  return sent;
}

/** The header's one Leave button ends a membership (main.js asks here):
 * whether it was a private room we could leave. */
function leaveRoom(app, room) {
  const known = app.state.rooms.known.get(roomKey(room));
  if (!known || sameNick(known.owner, app.state.me)) return false;
  leave(app, room);
  return true;
}

function create(app, room, text) {
  const frame = text ? { type: "room_create", room, topic: text } : { type: "room_create", room };
  app.request(frame, (reply) => {
    if (reply.type === "error") return app.notice(reply.message, true);
    app.dispatch({ type: "joined", room: reply.room, members: reply.members, select: true });
  });
}

function answer(app, type, room, onJoined) {
  app.request({ type, room }, (reply) => {
    app.dispatch({ type: "room_invitation_answered", room });
    if (reply.type === "error") app.notice(reply.message, true);
    else if (onJoined) app.dispatch({ type: "joined", room: reply.room, members: reply.members, select: true });
  });
}

function accept(app, room) {
  if (!room) return usage(app, "/accept #room");
  answer(app, "room_accept", room, true);
}

function decline(app, room) {
  if (!room) return usage(app, "/decline #room");
  answer(app, "room_decline", room, false);
}

function loadInvitations(app, tell) {
  app.request({ type: "room_invitations" }, (reply) => {
    if (reply.type === "error") return tell && app.notice(reply.message, true);
    app.dispatch({ type: "room_invitations", invitations: reply.invitations });
    if (tell && reply.invitations.length === 0) app.notice("No invitations are waiting for you.");
  });
}

/** The words `/info` shows for a `room_info` reply. */
export function infoText(reply) {
  const parts = [`${reply.room}: owner ${reply.owner}`];
  if (reply.moderators?.length) parts.push(`moderators ${reply.moderators.join(", ")}`);
  parts.push(`members ${reply.members.join(", ")}`);
  if (reply.invited?.length) parts.push(`invited ${reply.invited.join(", ")}`);
  if (reply.banned?.length) parts.push(`banned ${reply.banned.join(", ")}`);
  if (reply.topic) parts.push(`topic: ${reply.topic}`);
  return parts.join("; ");
}

function info(app, room, tell) {
  app.request({ type: "room_info", room }, (reply) => {
    const isPrivate = reply.type === "room_info";
    app.dispatch({ type: "room_info", room, info: isPrivate ? reply : null });
    if (tell) {
      if (isPrivate) app.notice(infoText(reply));
      else app.notice(`${room} is not a private room.`, true);
    }
  });
}

const commands = {
  create: (args, app) => {
    const [room, ...words] = args.trim().split(/\s+/);
    if (!room) return usage(app, "/create #room [topic]");
    create(app, room.startsWith("#") ? room : `#${room}`, words.join(" "));
  },
  invite: (args, app) => withUserAndRoom(app, args, "/invite nick [#room]", (room, user) => act(app, "room_invite", room, { user }, `${user} is invited to ${room}.`)),
  revoke: (args, app) => withUserAndRoom(app, args, "/revoke nick [#room]", (room, user) => act(app, "room_revoke", room, { user }, `The invitation of ${user} to ${room} is withdrawn.`)),
  accept: (args, app) => accept(app, roomArg(args) || firstInvitation(app.state)),
  decline: (args, app) => decline(app, roomArg(args) || firstInvitation(app.state)),
  leave: (args, app) => {
    const room = args.trim();
    return room ? leave(app, room.startsWith("#") ? room : `#${room}`) : withRoom(app, (r) => leave(app, r));
  },
  kick: (args, app) => withRoomAndUser(app, args, "/kick nick [reason]", (room, user, reason) => act(app, "room_kick", room, reason ? { user, reason } : { user })),
  ban: (args, app) => withRoomAndUser(app, args, "/ban nick [reason]", (room, user, reason) => act(app, "room_ban", room, reason ? { user, reason } : { user })),
  unban: (args, app) => withRoomAndUser(app, args, "/unban nick", (room, user) => act(app, "room_unban", room, { user }, `${user} may be invited to ${room} again.`)),
  promote: (args, app) => withRoomAndUser(app, args, "/promote nick", (room, user) => act(app, "room_promote", room, { user })),
  demote: (args, app) => withRoomAndUser(app, args, "/demote nick", (room, user) => act(app, "room_demote", room, { user })),
  transfer: (args, app) => withRoomAndUser(app, args, "/transfer nick", (room, user) => act(app, "room_transfer", room, { user })),
  topic: (args, app) => withRoom(app, (room) => topic(app, room, args.trim())),
  // Cannot be undone: the room is named even from inside it.
  delete: (args, app) => {
    const room = roomArg(args);
    if (!room) return usage(app, "/delete #room (the room is named, even from inside it: this cannot be undone)");
    return act(app, "room_delete", room, {}, null, () => app.dispatch({ type: "room_left", room }));
  },
  info: (args, app) => (roomArg(args) ? info(app, roomArg(args), true) : withRoom(app, (room) => info(app, room, true))),
  invites: (args, app) => loadInvitations(app, true),
};

/** Connects the sidebar's and the room panel's forms (once, at start). */
function wire(app) {
  $("create-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const raw = $("create-input").value.trim();
    if (!raw) return;
    create(app, raw.startsWith("#") ? raw : `#${raw}`, "");
    $("create-input").value = "";
  });
  $("invite-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const user = $("invite-input").value.trim();
    const room = currentRoom(app.state);
    if (!user || !room) return;
    if (act(app, "room_invite", room, { user }, `${user} is invited to ${room}.`)) $("invite-input").value = "";
  });
  $("topic-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const room = currentRoom(app.state);
    if (room) topic(app, room, $("topic-input").value.trim() || "--clear");
  });
  $("room-delete").addEventListener("click", () => {
    const room = currentRoom(app.state);
    if (room && window.confirm(`Delete ${room} for everyone? This cannot be undone.`)) commands.delete(room, app);
  });
}

/** Draws the invitations in the sidebar and the open private room's tools. */
function view(state, app) {
  const loggedIn = state.loggedIn && state.phase === "chat";
  $("private-rooms").hidden = !state.features.has("private_rooms");
  $("create-form").hidden = !loggedIn;
  $("private-guest-note").hidden = loggedIn;
  $("invitations").replaceChildren(...[...state.rooms.invitations].map(([room, from]) => {
    const yes = el("button", { cls: "accept", text: "Accept", attrs: { type: "button" } });
    const no = el("button", { cls: "secondary decline", text: "Decline", attrs: { type: "button" } });
    yes.addEventListener("click", () => accept(app, room));
    no.addEventListener("click", () => decline(app, room));
    return el("li", { cls: "invitation", attrs: { "data-room": room } }, [
      el("span", { cls: "name", text: `${room} from ${from}` }), yes, no,
    ]);
  }));

  const room = currentRoom(state);
  const known = room ? state.rooms.known.get(roomKey(room)) : null;
  $("room-tools").hidden = !known;
  if (!known) {
    $("leave").title = "";
    return;
  }
  roomTools(state, app, room, known);
}

/** The panel of a private room: role, invite form, settings, Leave. */
function roomTools(state, app, room, known) {
  const { isOwner, isModerator } = roleIn(state, known);
  const role = isOwner ? "you own it" : isModerator ? "you moderate it" : "you are a member";
  $("room-role").textContent = `Private room · ${role}${known.topic ? ` · ${known.topic}` : ""}`;
  $("invite-form").hidden = !isModerator;
  // The settings panel: the topic, who is invited, who is banned, each
  // with what can be done about it (moderators only).
  $("room-settings").hidden = !isModerator;
  if (document.activeElement !== $("topic-input")) $("topic-input").value = known.topic ?? "";
  const people = (list, label, type, done) => (list?.length ? list : []).map((user) => {
    const undo = el("button", { cls: "secondary", text: label, attrs: { type: "button", "data-user": user } });
    undo.addEventListener("click", () => act(app, type, room, { user }, done(user)));
    return el("li", {}, [el("span", { text: user }), undo]);
  });
  const invited = people(known.invited, "Withdraw", "room_revoke", (u) => `The invitation of ${u} to ${room} is withdrawn.`);
  const banned = people(known.banned, "Unban", "room_unban", (u) => `${u} may be invited to ${room} again.`);
  $("room-invited").replaceChildren(...(invited.length ? invited : [el("li", { cls: "none", text: "nobody" })]));
  $("room-banned").replaceChildren(...(banned.length ? banned : [el("li", { cls: "none", text: "nobody" })]));
  // One Leave button, in the header: a member's ends the membership; the
  // owner (who cannot leave) steps out.
  $("leave").textContent = isOwner ? "Leave" : "Leave room";
  $("leave").title = isOwner ? `Step out of ${room}; you stay its owner` : `End your membership of ${room}`;
  $("room-delete").hidden = !isOwner;
}

export const rooms = {
  feature: "private_rooms",
  reducers: roomsReducers,
  // Server frames become events of the same name.
  frames: ["room_invitation", "room_event"],
  /** After a frame's event: a room that changed is asked about again. */
  afterFrame(frame, app) {
    if (frame.type === "room_event" && app.state.rooms.known.has(roomKey(frame.room))) info(app, frame.room, false);
  },
  commands,
  help: [
    "/create #room [topic] — create a private room (accounts only)",
    "/invite nick [#room], /revoke nick [#room] — invite someone to a private room (the current one), or withdraw it",
    "/accept [#room], /decline [#room] — answer an invitation (the latest one by default); /invites lists them",
    "/leave [#room] — end your membership of a private room (/part only steps out)",
    "/kick nick [reason], /ban nick [reason], /unban nick — moderate the current private room",
    "/topic [text|--clear] — show, set or clear its topic",
    "/promote nick, /demote nick, /transfer nick — make a moderator, a plain member, or the owner",
    "/delete #room — delete a private room for everyone; /info [#room] — who owns it, who is in it",
  ],
  identified(app) {
    app.dispatch({ type: "rooms_identified" });
    if (app.state.loggedIn) loadInvitations(app, false);
  },
  observe(frame, app) {
    // Learn whether a room we are now in is private (and our role in it).
    if (frame.type === "joined" && app.state.loggedIn) info(app, frame.room, false);
  },
  memberActions,
  leaveRoom,
  wire,
  view,
};
