// Private rooms, when the server has the `rooms` plugin (docs/protocol.md,
// "Private rooms frames"): create, invite, accept or decline, leave, and the
// moderation actions (kick, ban, unban, topic, promote, demote, transfer,
// delete) as buttons and slash commands. Accounts only: guests are told so.

import { SERVER_KEY } from "../state.js";
import { $, el } from "../view/dom.js";

let app = null;
/** Pending invitations: room name -> who invited. */
const invitations = new Map();
/** What we know of private rooms we are in: lower-case name -> room_info. */
const privateRooms = new Map();

const key = (room) => room.toLowerCase();

export const rooms = {
  feature: "private_rooms",
  frames: {
    room_invitation: (frame) => {
      invitations.set(frame.room, frame.from);
      // Not about the conversation open: the server view keeps it.
      app.notice(`${frame.from} invited you to the private room ${frame.room}. Accept or decline it in the sidebar.`, false, SERVER_KEY);
      render();
    },
    room_event: (frame) => onEvent(frame),
  },
  commands: {
    create: (args) => {
      const [room, ...topic] = args.trim().split(/\s+/);
      if (!room) return usage("/create #room [topic]");
      create(room.startsWith("#") ? room : `#${room}`, topic.join(" "));
    },
    invite: (args) => withUserAndRoom(args, "/invite nick [#room]", (room, user) => act("room_invite", room, { user }, `${user} is invited to ${room}.`)),
    revoke: (args) => withUserAndRoom(args, "/revoke nick [#room]", (room, user) => act("room_revoke", room, { user }, `The invitation of ${user} to ${room} is withdrawn.`)),
    accept: (args) => accept(roomArg(args) || firstInvitation()),
    decline: (args) => decline(roomArg(args) || firstInvitation()),
    leave: (args) => {
      const room = args.trim();
      return room ? leave(room.startsWith("#") ? room : `#${room}`) : withRoom(leave);
    },
    kick: (args) => withRoomAndUser(args, "/kick nick [reason]", (room, user, reason) => act("room_kick", room, reason ? { user, reason } : { user })),
    ban: (args) => withRoomAndUser(args, "/ban nick [reason]", (room, user, reason) => act("room_ban", room, reason ? { user, reason } : { user })),
    unban: (args) => withRoomAndUser(args, "/unban nick", (room, user) => act("room_unban", room, { user }, `${user} may be invited to ${room} again.`)),
    promote: (args) => withRoomAndUser(args, "/promote nick", (room, user) => act("room_promote", room, { user })),
    demote: (args) => withRoomAndUser(args, "/demote nick", (room, user) => act("room_demote", room, { user })),
    transfer: (args) => withRoomAndUser(args, "/transfer nick", (room, user) => act("room_transfer", room, { user })),
    topic: (args) => withRoom((room) => topic(room, args.trim())),
    // Cannot be undone: the room is named even from inside it.
    delete: (args) => {
      const room = roomArg(args);
      if (!room) return usage("/delete #room (the room is named, even from inside it: this cannot be undone)");
      return act("room_delete", room, {}, null, () => app.dispatch({ type: "parted", room }));
    },
    info: (args) => (roomArg(args) ? info(roomArg(args), true) : withRoom((room) => info(room, true))),
    invites: () => loadInvitations(true),
  },
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
  start(a) {
    const firstStart = app === null;
    app = a;
    if (firstStart) wire();
    render();
  },
  identified() {
    invitations.clear();
    privateRooms.clear();
    if (app.state.loggedIn) loadInvitations(false);
    render();
  },
  observe(frame) {
    // Learn whether a room we are now in is private (and our role in it).
    if (frame.type === "joined" && app.state.loggedIn) info(frame.room, false);
    if (frame.type === "joined" || frame.type === "ok") render();
  },
  render: () => render(),
  /** The member menu's moderation actions, for those allowed them. */
  memberActions(conv, nick) {
    const known = conv?.kind === "room" ? privateRooms.get(key(conv.name)) : null;
    if (!known) return [];
    const me = app.state.me?.toLowerCase();
    const lower = nick.toLowerCase();
    const isOwner = known.owner.toLowerCase() === me;
    const moderators = (known.moderators ?? []).map((m) => m.toLowerCase());
    const targetIsModerator = moderators.includes(lower);
    const mayModerate = isOwner || app.state.admin || (moderators.includes(me) && !targetIsModerator);
    if (lower === known.owner.toLowerCase() || !mayModerate) return [];
    const room = conv.name;
    const actions = [
      { label: "Kick", run: () => act("room_kick", room, { user: nick }) },
      { label: "Ban", run: () => act("room_ban", room, { user: nick }) },
    ];
    if (isOwner || app.state.admin) {
      actions.push(targetIsModerator
        ? { label: "Demote", run: () => act("room_demote", room, { user: nick }) }
        : { label: "Promote", run: () => act("room_promote", room, { user: nick }) });
    }
    return actions;
  },
};

function usage(text) {
  app.notice(`Usage: ${text}`, true);
  return false;
}

function currentRoom() {
  const conv = app.state.conversations.get(app.state.current);
  return conv?.kind === "room" ? conv.name : null;
}

function withRoom(action) {
  const room = currentRoom();
  if (!room) return usage("open the private room first");
  return action(room);
}

/** `#room` from a command's argument (the `#` may be left out), or "". */
function roomArg(args) {
  const word = args.trim().split(/\s+/)[0] ?? "";
  return word ? (word.startsWith("#") ? word : `#${word}`) : "";
}

/** `nick [#room]`: the room named, else the current one. */
function withUserAndRoom(args, text, action) {
  const [user, room, ...extra] = args.trim().split(/\s+/);
  if (!user || extra.length) return usage(text);
  if (room) return action(room.startsWith("#") ? room : `#${room}`, user);
  return withRoom((current) => action(current, user));
}

/** `/topic`: shows it; `/topic --clear` clears it; `/topic text` sets it. */
function topic(room, text) {
  if (text === "") {
    const known = privateRooms.get(key(room));
    app.notice(known?.topic ? `The topic of ${room}: ${known.topic}` : `${room} has no topic.`);
    return true;
  }
  return act("room_topic", room, { topic: text === "--clear" ? "" : text });
}

function withRoomAndUser(args, text, action) {
  const [user, ...rest] = args.trim().split(/\s+/);
  if (!user) return usage(text);
  return withRoom((room) => action(room, user, rest.join(" ")));
}

function firstInvitation() {
  return invitations.keys().next().value ?? "";
}

/** Sends a room_* request; shows `done` (or the server's error) as a notice. */
function act(type, room, fields, done, then) {
  const sent = app.request({ type, room, ...fields }, (reply) => {
    if (reply.type === "error") return app.notice(reply.message, true);
    if (done) app.notice(done);
    then?.(reply);
    if (privateRooms.has(key(room))) info(room, false);
  });
  if (!sent) app.notice("Not connected right now; try again when the connection is back.", true);
  return sent;
}

/** `/leave`: ends the membership of a private room (`room_leave`); in a
 * public room, where there is no membership, it is `/part`. */
function leave(room) {
  if (!privateRooms.has(key(room))) return app.submit(`/part ${room}`);
  const sent = app.request({ type: "room_leave", room }, (reply) => {
    if (reply.type === "error") return app.notice(reply.message, true);
    privateRooms.delete(key(room));
    app.dispatch({ type: "parted", room });
    app.notice(`You are no longer a member of ${room}.`, false, SERVER_KEY);
  });
  if (!sent) app.notice("Not connected right now; try again when the connection is back.", true);
  return sent;
}

function create(room, topic) {
  const frame = topic ? { type: "room_create", room, topic } : { type: "room_create", room };
  app.request(frame, (reply) => {
    if (reply.type === "error") return app.notice(reply.message, true);
    app.dispatch({ type: "joined", room: reply.room, members: reply.members, select: true });
  });
}

function accept(room) {
  if (!room) return usage("/accept #room");
  app.request({ type: "room_accept", room }, (reply) => {
    invitations.delete(room);
    if (reply.type === "error") app.notice(reply.message, true);
    else app.dispatch({ type: "joined", room: reply.room, members: reply.members, select: true });
    render();
  });
}

function decline(room) {
  if (!room) return usage("/decline #room");
  app.request({ type: "room_decline", room }, (reply) => {
    invitations.delete(room);
    if (reply.type === "error") app.notice(reply.message, true);
    render();
  });
}

function loadInvitations(tell) {
  app.request({ type: "room_invitations" }, (reply) => {
    if (reply.type === "error") return tell && app.notice(reply.message, true);
    invitations.clear();
    for (const i of reply.invitations) invitations.set(i.room, i.from);
    if (tell && invitations.size === 0) app.notice("No invitations are waiting for you.");
    render();
  });
}

function info(room, tell) {
  app.request({ type: "room_info", room }, (reply) => {
    if (reply.type === "room_info") {
      privateRooms.set(key(room), reply);
      if (tell) {
        const parts = [`${reply.room}: owner ${reply.owner}`];
        if (reply.moderators?.length) parts.push(`moderators ${reply.moderators.join(", ")}`);
        parts.push(`members ${reply.members.join(", ")}`);
        if (reply.invited?.length) parts.push(`invited ${reply.invited.join(", ")}`);
        if (reply.banned?.length) parts.push(`banned ${reply.banned.join(", ")}`);
        if (reply.topic) parts.push(`topic: ${reply.topic}`);
        app.notice(parts.join("; "));
      }
    } else {
      privateRooms.delete(key(room));
      if (tell) app.notice(`${room} is not a private room.`, true);
    }
    render();
  });
}

function onEvent(e) {
  const me = app.state.me?.toLowerCase();
  const aboutMe = e.user && e.user.toLowerCase() === me;
  const reason = e.reason ? ` (${e.reason})` : "";
  const text = {
    kick: `${e.by} removed ${aboutMe ? "you" : e.user} from ${e.room}${reason}`,
    ban: `${e.by} banned ${aboutMe ? "you" : e.user} from ${e.room}${reason}`,
    topic: e.topic ? `${e.by} set the topic of ${e.room}: ${e.topic}` : `${e.by} cleared the topic of ${e.room}`,
    promote: `${e.by} made ${e.user} a moderator of ${e.room}`,
    demote: `${e.by} made ${e.user} a plain member of ${e.room}`,
    transfer: `${e.by} handed ${e.room} over to ${e.user}`,
    delete: `${e.by} deleted the room ${e.room}`,
    revoke: `${e.by} withdrew your invitation to ${e.room}`,
  }[e.event] ?? `${e.event} in ${e.room}`;
  const gone = e.event === "delete" || ((e.event === "kick" || e.event === "ban") && aboutMe);
  if (e.event === "revoke") invitations.delete(e.room);
  if (gone) {
    privateRooms.delete(key(e.room));
    app.dispatch({ type: "parted", room: e.room });
    // The room is gone from the sidebar: the server view keeps the news.
    app.notice(text, true, SERVER_KEY);
  } else if (e.event === "kick" || e.event === "ban") {
    app.dispatch({ type: "removed_from_room", room: e.room, user: e.user, text });
    if (privateRooms.has(key(e.room))) info(e.room, false);
  } else {
    app.dispatch({ type: "notice", key: key(e.room), text });
    if (privateRooms.has(key(e.room))) info(e.room, false);
  }
  render();
}

function wire() {
  $("create-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const raw = $("create-input").value.trim();
    if (!raw) return;
    create(raw.startsWith("#") ? raw : `#${raw}`, "");
    $("create-input").value = "";
  });
  $("invite-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const user = $("invite-input").value.trim();
    const room = currentRoom();
    if (!user || !room) return;
    if (act("room_invite", room, { user }, `${user} is invited to ${room}.`)) $("invite-input").value = "";
  });
  // The header's one Leave button ends a membership (main.js asks here).
  app.leaveRoom = (room) => {
    const known = privateRooms.get(key(room));
    if (!known || known.owner.toLowerCase() === app.state.me?.toLowerCase()) return false;
    leave(room);
    return true;
  };
  $("topic-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const room = currentRoom();
    if (room) topic(room, $("topic-input").value.trim() || "--clear");
  });
  $("room-delete").addEventListener("click", () => {
    const room = currentRoom();
    if (room && window.confirm(`Delete ${room} for everyone? This cannot be undone.`)) rooms.commands.delete(room);
  });
}

function render() {
  if (!app) return;
  const loggedIn = app.state.loggedIn && app.state.phase === "chat";
  $("private-rooms").hidden = !app.state.features.has("private_rooms");
  $("create-form").hidden = !loggedIn;
  $("private-guest-note").hidden = loggedIn;
  $("invitations").replaceChildren(...[...invitations].map(([room, from]) => {
    const yes = el("button", { cls: "accept", text: "Accept", attrs: { type: "button" } });
    const no = el("button", { cls: "secondary decline", text: "Decline", attrs: { type: "button" } });
    yes.addEventListener("click", () => accept(room));
    no.addEventListener("click", () => decline(room));
    return el("li", { cls: "invitation", attrs: { "data-room": room } }, [
      el("span", { cls: "name", text: `${room} from ${from}` }), yes, no,
    ]);
  }));

  const room = currentRoom();
  const known = room ? privateRooms.get(key(room)) : null;
  $("room-tools").hidden = !known;
  if (!known) {
    $("leave").title = "";
    return;
  }
  const me = app.state.me?.toLowerCase();
  const isOwner = known.owner.toLowerCase() === me;
  const isModerator = isOwner || (known.moderators ?? []).some((m) => m.toLowerCase() === me) || app.state.admin;
  const role = isOwner ? "you own it" : isModerator ? "you moderate it" : "you are a member";
  $("room-role").textContent = `Private room · ${role}${known.topic ? ` · ${known.topic}` : ""}`;
  $("invite-form").hidden = !isModerator;
  // The settings panel: the topic, who is invited, who is banned, each
  // with what can be done about it (moderators only).
  $("room-settings").hidden = !isModerator;
  if (document.activeElement !== $("topic-input")) $("topic-input").value = known.topic ?? "";
  const people = (list, label, type, done) => (list?.length ? list : []).map((user) => {
    const undo = el("button", { cls: "secondary", text: label, attrs: { type: "button", "data-user": user } });
    undo.addEventListener("click", () => act(type, room, { user }, done(user)));
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
