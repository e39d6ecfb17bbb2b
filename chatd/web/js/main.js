// Wires the app together: connection frames and user input become events,
// `update` applies them to the state, and the views draw the state.

import { Connection } from "./connection.js";
import { HELP, parse } from "./commands.js";
import {
  featureCommand, featureHelp, featuresIdentified, handleFeatureFrame, leaveRoom, memberActions, observeFrame,
  renderFeatures, startFeatures, wireFeatures,
} from "./features.js";
import { describeError, replyId, requests } from "./protocol.js";
import { HISTORY_PAGE, dmKey, initialState, mentions, newestMsgId, oldestMsgId, roomsToRejoin, update } from "./state.js";
import { wireSettings, notifyAbout } from "./settings.js";
import { $ } from "./view/dom.js";
import { renderConnect } from "./view/connect.js";
import { renderMembers } from "./view/members.js";
import { renderMessages, scrollToBottom } from "./view/messages.js";
import { renderSidebar } from "./view/sidebar.js";
import { renderStatus } from "./view/status.js";

const state = initialState();

/** Requests awaiting their reply, by id: what to do with the answer. */
const pending = new Map();

/**
 * Who we were, so a reconnect can identify again by itself. Kept in this
 * page's memory only (never in storage); a reload asks again.
 */
let credentials = null;

/**
 * Whether this page may log in again by itself with `resume` (the token is
 * in an HttpOnly cookie the page cannot read). False after logging out.
 */
let mayResume = true;

/**
 * Hands the resume token of `logged_in` to the server, which keeps it in
 * an HttpOnly cookie; the page keeps no copy.
 */
function keepSession(token) {
  if (typeof token !== "string") return;
  fetch("/session", { method: "POST", body: token, credentials: "same-origin" }).catch(() => {});
}

/** Forgets the session cookie (logging out, or the server refused it). */
function forgetSession() {
  fetch("/session", { method: "DELETE", credentials: "same-origin" }).catch(() => {});
}

/** Whether the server can resume sessions: tokens (`resume`, from the
 * accounts plugin) and the catch-up that rejoins rooms (`history`). */
function serverResumes() {
  return state.features.has("resume") && state.features.has("history");
}

/** How long "Reconnected." stays in the banner. */
const RECONNECTED_SHOWN_MS = 4000;

/** Codes after which reconnecting would only repeat the problem. */
const FINAL_BYE = new Set(["kicked", "quit", "unsupported_protocol"]);

const proto = location.protocol === "https:" ? "wss:" : "ws:";
const connection = new Connection(`${proto}//${location.host}/ws`, {
  onOpen: () => connection.send(requests.hello()),
  onFrame,
  onStatus: (status, retryIn, note) => dispatch({ type: "connection", status, retryIn, note }),
});

let renderQueued = false;

function dispatch(event) {
  update(state, event);
  if (!renderQueued) {
    renderQueued = true;
    queueMicrotask(render);
  }
}

function render() {
  renderQueued = false;
  renderStatus(state);
  renderConnect(state);
  renderSidebar(state, { onSelect: select });
  renderMembers(state, {
    onOpenDm: openDm,
    actionsFor: (conv, nick) => memberActions(app, conv, nick),
    onMenu: (nick) => dispatch({ type: "member_menu", nick }),
  });
  renderMessages(state);
  renderFeatures(state, app);
  if (wantFocus && state.phase === "chat") {
    wantFocus = false;
    if (window.matchMedia("(min-width: 761px)").matches) $("input").focus();
  }
  afterRender();
}

/** The message box gets the focus once the next render has shown it. */
let wantFocus = false;

/** What showing the current conversation asks of the server: its recent
 * history the first time, older pages while the list cannot scroll yet,
 * and the read marker. */
function afterRender() {
  if (state.phase !== "chat") return;
  const conv = state.conversations.get(state.current);
  if (!conv) return;
  if (!conv.history.loaded) loadHistory(conv, null);
  else if (conv.history.more && !conv.history.loading) {
    const list = $("messages");
    if (list.scrollHeight <= list.clientHeight) loadOlder();
  }
  markRead(conv);
}

/** `{room}` or `{with}` for requests about a conversation. */
function target(conv) {
  if (conv.kind === "room") return { room: conv.name };
  if (conv.kind === "dm") return { with: conv.name };
  return null;
}

/** Whether the server can be asked about `conv` now. */
function canAsk(conv) {
  return state.connection === "open" && state.me !== null && !state.resuming && !state.connectBusy
    && state.features.has("history") && target(conv) !== null
    && (conv.kind !== "room" || conv.joined);
}

/** Asks for a page of history: the latest, or the one `before` a msg_id. */
function loadHistory(conv, before) {
  if (conv.history.loading || !canAsk(conv)) return;
  const key = conv.key;
  if (send(requests.history(target(conv), before, HISTORY_PAGE), { kind: "history", key })) {
    dispatch({ type: "history_request", key });
  }
}

/** The page before the oldest message shown, while there is one. */
function loadOlder() {
  const conv = state.conversations.get(state.current);
  if (!conv || !conv.history.loaded || !conv.history.more) return;
  const oldest = oldestMsgId(conv);
  if (oldest !== null) loadHistory(conv, oldest);
}

/** At most one `read` per conversation per this many milliseconds: a busy
 * room must not spend the client's frame allowance on read markers. */
const READ_INTERVAL_MS = 1000;
/** When the last `read` of each conversation was sent, by key. */
const lastReadAt = new Map();
let readTimer = null;

/** Tells the server (and so the account's other devices) what was read. */
function markRead(conv) {
  if (!state.loggedIn || document.visibilityState !== "visible" || !canAsk(conv)) return;
  const newest = newestMsgId(conv);
  if (newest <= conv.readMsgId) return;
  const wait = (lastReadAt.get(conv.key) ?? 0) + READ_INTERVAL_MS - Date.now();
  if (wait > 0) {
    // Sent when the interval is over, for whatever is shown then.
    if (readTimer === null) {
      readTimer = setTimeout(() => {
        readTimer = null;
        dispatch({ type: "noop" });
      }, wait);
    }
    return;
  }
  if (send(requests.read(target(conv), newest), { kind: "read" })) {
    lastReadAt.set(conv.key, Date.now());
    dispatch({ type: "read_sent", key: conv.key, msgId: newest });
  }
}

const app = {
  state,
  dispatch,
  request: (frame, onReply) => send(frame, { kind: "extra", onReply }),
  /** A notice in the conversation `key` (the one open when none). */
  notice: (text, error = false, key = undefined) => dispatch({ type: "notice", text, error, key }),
  submit: (line) => submitLine(line),
};

/** Sends a request and remembers what its reply means. */
function send(frame, meaning) {
  const id = connection.request(frame);
  if (id !== null) pending.set(id, meaning);
  return id !== null;
}

function onFrame(frame) {
  const id = replyId(frame);
  const meaning = id !== null ? pending.get(id) : undefined;
  if (meaning) pending.delete(id);
  if (frame.type !== "welcome") observeFrame(frame, app);
  switch (frame.type) {
    case "welcome":
      connection.confirmed();
      pending.clear();
      dispatch({ type: "connection", status: "open", note: "" });
      if (state.reconnected) setTimeout(() => dispatch({ type: "reconnected_seen" }), RECONNECTED_SHOWN_MS);
      dispatch({ type: "welcome", welcome: frame });
      startFeatures(app);
      // An account comes back with its cookie (page load, new tab, server
      // restart, dropped connection); a guest with its nickname. Without a
      // cookie the server answers invalid_token and the form is shown.
      if (serverResumes() && mayResume && (state.loggedIn || !credentials)) resume();
      else if (credentials) identify(credentials);
      return;
    case "error":
      return onError(frame, meaning);
    case "bye": {
      const text = describeError(frame.code, frame.reason);
      if (FINAL_BYE.has(frame.code)) {
        connection.stop();
        dispatch({ type: "connection", status: "offline", note: `Disconnected: ${text} Reload the page to connect again.` });
      } else {
        dispatch({ type: "connection", status: "reconnecting", note: text });
      }
      return;
    }
    case "ok":
    case "logged_in":
      return onOk(frame, meaning);
    case "joined":
      if (meaning?.onReply) return meaning.onReply(frame);
      // Without id: the server joined us again to a room of the account.
      dispatch({ type: "joined", room: frame.room, members: frame.members, select: meaning?.select ?? false, rejoined: id === null });
      if (meaning?.select) {
        $("chat").classList.remove("show-sidebar");
        focusInput();
      }
      return;
    case "history":
      if (meaning?.kind === "history") {
        dispatch({ type: "history", key: meaning.key, messages: frame.messages ?? [], more: frame.more, older: true });
      }
      return;
    case "missed":
      dispatch({ type: "missed", messages: frame.messages ?? [] });
      return;
    case "resumed":
      onResumed(frame);
      return;
    case "unread":
      if (Array.isArray(frame.conversations)) dispatch({ type: "unread", conversations: frame.conversations });
      return;
    case "sent":
      if (meaning?.kind === "message") {
        dispatch({ type: "sent", pending: meaning, msgId: frame.msg_id, ts: frame.ts, text: frame.text });
        if (frame.stored && meaning.direct) {
          dispatch({ type: "notice", key: dmKey(meaning.to), text: `${meaning.to} is not connected: the message is kept and delivered when they log in.` });
        }
      }
      return;
    case "message":
      dispatch({ type: "message", message: frame });
      if (frame.kind === "direct" || mentions(frame.text, state.me)) notifyAbout(frame, state);
      return;
    case "presence":
      dispatch({ type: "presence", presence: frame });
      return;
    case "users":
      dispatch({ type: "users", room: frame.room, users: frame.users, key: meaning?.key });
      return;
    case "rooms":
      dispatch({ type: "rooms", rooms: frame.rooms, key: meaning?.key });
      return;
    case "pong":
      return;
    default:
      if (meaning?.onReply) return meaning.onReply(frame);
      handleFeatureFrame(frame, app);
  }
}

function onOk(frame, meaning) {
  if (!meaning) return;
  switch (meaning.kind) {
    case "resume": {
      mayResume = true;
      keepSession(frame.resume_token);
      resumeAsked = meaning.lastMsgId;
      dispatch({ type: "identified", nick: frame.user, admin: frame.admin, loggedIn: true });
      // The server joins the account's rooms again (`joined` without id);
      // `resumed` follows the messages we missed.
      featuresIdentified(app);
      focusInput();
      return;
    }
    case "identify": {
      const nick = frame.type === "logged_in" ? frame.user : frame.nick ?? meaning.name;
      credentials = meaning.credentials;
      if (frame.type === "logged_in") {
        mayResume = true;
        keepSession(frame.resume_token);
      }
      // Messages may have been missed while the connection was down.
      if (state.features.has("history")) dispatch({ type: "history_reload", clearRooms: true });
      dispatch({ type: "identified", nick, admin: frame.admin, loggedIn: frame.type === "logged_in" });
      // Back in the rooms we were in before the connection dropped.
      for (const room of roomsToRejoin(state)) send(requests.join(room), { kind: "join", room, select: false });
      featuresIdentified(app);
      focusInput();
      return;
    }
    case "nick":
      dispatch({ type: "nick_changed", nick: frame.nick ?? meaning.nick });
      if (credentials && !credentials.password) credentials = { ...credentials, name: frame.nick ?? meaning.nick };
      // A room we are in says so itself (its `presence nick`): one line.
      if (!(state.conversations.get(meaning.key)?.kind === "room" && state.conversations.get(meaning.key).joined)) {
        dispatch({ type: "notice", key: meaning.key, text: `You are now known as ${frame.nick ?? meaning.nick}.` });
      }
      return;
    case "part":
      dispatch({ type: "parted", room: meaning.room });
      return;
    case "logout":
      credentials = null;
      dispatch({ type: "logged_out" });
      return;
    case "extra":
      meaning.onReply?.(frame);
      return;
    default:
      return;
  }
}

/** The last_msg_id the latest `resume` carried (0: none). */
let resumeAsked = 0;

/** Logs in again with the cookie's token, continuing after what we saw. */
function resume() {
  const lastMsgId = state.loggedIn ? state.lastMsgId : 0;
  dispatch({ type: "resuming" });
  if (!send(requests.resume(lastMsgId), { kind: "resume", lastMsgId })) {
    dispatch({ type: "identify_failed", message: "" });
  }
}

/** The catch-up after a resume is complete. */
function onResumed(frame) {
  // Too much was missed to be sent at once: every conversation starts
  // again from its latest page. Without a resume point (nothing seen yet)
  // each asks for its latest page again.
  if (frame.more) dispatch({ type: "resumed_gap" });
  else if (!resumeAsked) dispatch({ type: "history_reload", clearRooms: false });
  // Rooms on screen that the server did not join us to again.
  for (const room of roomsToRejoin(state)) {
    const conv = state.conversations.get(room.toLowerCase());
    if (conv && !conv.joined) send(requests.join(room), { kind: "join", room, select: false });
  }
}

function onError(frame, meaning) {
  const text = describeError(frame.code, frame.message);
  if (meaning?.kind === "resume") {
    // The cookie is gone, expired or revoked: log in with the password.
    if (frame.code === "invalid_token" || frame.code === "account_disabled") forgetSession();
    if (credentials) return identify(credentials);
    // On a page load a missing login is no error worth showing.
    const quiet = state.phase === "connect" && frame.code === "invalid_token";
    dispatch({ type: "identify_failed", message: quiet || frame.code === "feature_disabled" ? "" : text });
    return;
  }
  if (meaning?.kind === "history") {
    dispatch({ type: "history", key: meaning.key, failed: true });
    return;
  }
  if (meaning?.kind === "read") return;
  if (meaning?.kind === "identify") {
    credentials = null;
    dispatch({ type: "identify_failed", message: text });
    return;
  }
  if (meaning?.kind === "extra" && meaning.onReply) return meaning.onReply(frame);
  if (meaning?.kind === "message" && meaning.restore) restoreDraft(meaning.text);
  // A room that cannot be rejoined after a reconnect leaves the sidebar.
  if (meaning?.kind === "join" && meaning.room) dispatch({ type: "parted", room: meaning.room });
  dispatch({ type: "notice", text, error: true, key: meaning?.key });
}

function identify(creds) {
  dispatch({ type: "identifying" });
  // A guest when the server allows it and no password was given.
  const frame = creds.register ? requests.register(creds.name, creds.password)
    : state.accounts && (state.authRequired || creds.password) ? requests.login(creds.name, creds.password)
    : requests.nick(creds.name);
  // After a successful registration, later reconnects log in.
  const next = { ...creds, register: false };
  if (!send(frame, { kind: "identify", name: creds.name, credentials: next })) {
    dispatch({ type: "identify_failed", message: "Not connected to the server yet; try again in a moment." });
  }
}

function select(key) {
  dispatch({ type: "select", key });
  $("chat").classList.remove("show-sidebar");
  focusInput();
}

function openDm(nick) {
  dispatch({ type: "open_dm", nick });
  $("chat").classList.remove("show-members");
  focusInput();
}

/** Closes the conversation shown; a room is stepped out of (`part`). The
 * header's Leave button (`membership`) ends a private room's membership. */
function closeCurrent(membership = false) {
  const current = state.conversations.get(state.current);
  if (!current || current.kind === "server") return;
  if (membership && current.kind === "room" && current.joined && leaveRoom(app, current.name)) return;
  if (current.kind === "room" && current.joined) send(requests.part(current.name), { kind: "part", room: current.name });
  else dispatch({ type: "close_conversation", key: current.key });
}

function logOut() {
  mayResume = false;
  forgetSession();
  send(requests.logout(), { kind: "logout" });
}

function focusInput() {
  wantFocus = true;
}

function restoreDraft(text) {
  const input = $("input");
  if (input.value === "") input.value = text;
}

/** Runs one line from the input box; returns whether it was handled. */
function submitLine(line) {
  const action = parse(line, (name) => featureCommand(state, name) !== undefined);
  const current = state.conversations.get(state.current);
  const key = state.current;
  const notConnected = () => {
    dispatch({ type: "notice", text: "Not connected right now; your text is kept. It can be sent once the connection is back.", error: true });
    return false;
  };
  switch (action.kind) {
    case "say": {
      if (!current || current.kind === "server") {
        dispatch({ type: "notice", text: "Pick a room or a person first, or use /broadcast to write to everyone.", error: true });
        return false;
      }
      const text = action.text;
      const ok = current.kind === "room"
        ? send(requests.say(current.name, text), { kind: "message", room: current.name, text, key, restore: true })
        : send(requests.msg(current.name, text), { kind: "message", direct: true, to: current.name, text, key, restore: true });
      return ok || notConnected();
    }
    case "join":
      return send(requests.join(action.room), { kind: "join", select: true, key }) || notConnected();
    case "part": {
      const room = action.room ?? (current?.kind === "room" ? current.name : null);
      if (!room) {
        dispatch({ type: "notice", text: "Which room? Usage: /part #room", error: true });
        return false;
      }
      return send(requests.part(room), { kind: "part", room, key }) || notConnected();
    }
    case "msg":
      if (!action.text) {
        openDm(action.to);
        return true;
      }
      return send(requests.msg(action.to, action.text), { kind: "message", direct: true, to: action.to, text: action.text, key }) || notConnected();
    case "broadcast":
      return send(requests.broadcast(action.text), { kind: "message", broadcast: true, text: action.text, key }) || notConnected();
    case "nick":
      return send(requests.nick(action.nick), { kind: "nick", nick: action.nick, key }) || notConnected();
    case "users":
      return send(requests.users(action.room), { kind: "users", key }) || notConnected();
    case "who": {
      const room = action.room ?? (current?.kind === "room" ? current.name : null);
      if (!room) {
        dispatch({ type: "notice", text: "Which room? Usage: /who [#room] (in a room: that room)", error: true });
        return false;
      }
      return send(requests.users(room), { kind: "users", key }) || notConnected();
    }
    case "close":
      closeCurrent();
      return true;
    case "logout":
      if (!state.loggedIn) {
        dispatch({ type: "notice", text: "You are not logged in to an account.", error: true });
        return false;
      }
      logOut();
      return true;
    case "rooms":
      return send(requests.rooms(), { kind: "rooms", key }) || notConnected();
    case "help":
      for (const line of [...HELP, ...featureHelp(state)]) dispatch({ type: "notice", text: line });
      return true;
    case "extra":
      return featureCommand(state, action.name)(action.args, app) !== false;
    default:
      dispatch({ type: "notice", text: action.text, error: true });
      return false;
  }
}

function wireInput() {
  $("connect-form").addEventListener("submit", (e) => {
    e.preventDefault();
    identify({ name: $("nick").value.trim(), password: $("password").value, register: false });
  });
  $("register-button").addEventListener("click", () => {
    if (!$("connect-form").reportValidity()) return;
    identify({ name: $("nick").value.trim(), password: $("password").value, register: true });
  });
  $("logout").addEventListener("click", logOut);

  const input = $("input");
  const autosize = () => {
    input.style.height = "auto";
    input.style.height = `${input.scrollHeight + 2}px`;
  };
  input.addEventListener("input", autosize);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("compose").requestSubmit();
    }
  });
  $("compose").addEventListener("submit", (e) => {
    e.preventDefault();
    const line = input.value;
    if (line.trim() === "") return;
    if (submitLine(line)) {
      input.value = "";
      autosize();
    }
  });

  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const raw = $("join-input").value.trim();
    if (!raw) return;
    const room = raw.startsWith("#") ? raw : `#${raw}`;
    if (send(requests.join(room), { kind: "join", select: true })) $("join-input").value = "";
  });
  $("dm-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const nick = $("dm-input").value.trim();
    if (!nick) return;
    openDm(nick);
    $("dm-input").value = "";
  });
  $("leave").addEventListener("click", () => closeCurrent(true));
  $("new-below").addEventListener("click", scrollToBottom);
  $("messages").addEventListener("scroll", () => {
    const list = $("messages");
    if (list.scrollHeight - list.scrollTop - list.clientHeight <= 48) $("new-below").hidden = true;
    // Near the top: the page of history before the oldest message.
    if (list.scrollTop <= 64) loadOlder();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") dispatch({ type: "noop" });
  });
  $("sidebar-close").addEventListener("click", () => {
    $("chat").classList.remove("show-sidebar");
    $("sidebar-toggle").focus();
  });
  // Alt+Up / Alt+Down: the previous or next conversation, from anywhere.
  document.addEventListener("keydown", (e) => {
    if (!e.altKey || (e.key !== "ArrowUp" && e.key !== "ArrowDown") || state.phase !== "chat") return;
    e.preventDefault();
    const order = [...document.querySelectorAll("#sidebar li[data-key]")].map((li) => li.dataset.key);
    const at = order.indexOf(state.current);
    const next = order[(at + (e.key === "ArrowDown" ? 1 : order.length - 1)) % order.length];
    if (next) select(next);
  });
  $("sidebar-toggle").addEventListener("click", (e) => {
    e.stopPropagation();
    $("chat").classList.remove("show-members");
    $("chat").classList.toggle("show-sidebar");
  });
  $("members-toggle").addEventListener("click", (e) => {
    e.stopPropagation();
    $("chat").classList.remove("show-sidebar");
    $("chat").classList.toggle("show-members");
  });
  // On a phone, a tap on the conversation closes the panel over it.
  document.querySelector(".conversation").addEventListener("click", () => {
    $("chat").classList.remove("show-sidebar", "show-members");
  });
  window.addEventListener("beforeunload", () => connection.send(requests.quit()));
}

wireInput();
wireSettings(app);
wireFeatures(app);
render();
connection.start();
