// Wires the app together: connection frames and user input become events,
// `update` applies them to the state, and the views draw the state.

import { Connection } from "./connection.js";
import { HELP, parse, runExtra } from "./commands.js";
import {
  featureHelp, featuresIdentified, handleFeatureFrame, observeFrame, renderFeatures, startFeatures,
} from "./features.js";
import { describeError, replyId, requests } from "./protocol.js";
import { initialState, roomsToRejoin, update } from "./state.js";
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
  renderMembers(state, { onOpenDm: openDm });
  renderMessages(state);
  renderFeatures(app);
}

const app = {
  state,
  dispatch,
  request: (frame, onReply) => send(frame, { kind: "extra", onReply }),
  notice: (text, error = false) => dispatch({ type: "notice", text, error }),
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
      dispatch({ type: "welcome", welcome: frame });
      startFeatures(state.features, app);
      if (credentials) identify(credentials);
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
      dispatch({ type: "joined", room: frame.room, members: frame.members, select: meaning?.select ?? false });
      return;
    case "sent":
      if (meaning?.kind === "message") dispatch({ type: "sent", pending: meaning, msgId: frame.msg_id, ts: frame.ts, text: frame.text });
      return;
    case "message":
      dispatch({ type: "message", message: frame });
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
    case "identify": {
      const nick = frame.type === "logged_in" ? frame.user : frame.nick ?? meaning.name;
      credentials = meaning.credentials;
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
      dispatch({ type: "notice", text: `You are now known as ${frame.nick ?? meaning.nick}.` });
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

function onError(frame, meaning) {
  const text = describeError(frame.code, frame.message);
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

function focusInput() {
  if (window.matchMedia("(min-width: 761px)").matches) $("input").focus();
}

function restoreDraft(text) {
  const input = $("input");
  if (input.value === "") input.value = text;
}

/** Runs one line from the input box; returns whether it was handled. */
function submitLine(line) {
  const action = parse(line);
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
    case "rooms":
      return send(requests.rooms(), { kind: "rooms", key }) || notConnected();
    case "help":
      for (const line of [...HELP, ...featureHelp()]) dispatch({ type: "notice", text: line });
      return true;
    case "extra":
      return runExtra(action, app) !== false;
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
  $("logout").addEventListener("click", () => send(requests.logout(), { kind: "logout" }));

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
  $("leave").addEventListener("click", () => {
    const current = state.conversations.get(state.current);
    if (!current) return;
    if (current.kind === "room" && current.joined) send(requests.part(current.name), { kind: "part", room: current.name });
    else dispatch({ type: "close_conversation", key: current.key });
  });
  $("new-below").addEventListener("click", scrollToBottom);
  $("messages").addEventListener("scroll", () => {
    const list = $("messages");
    if (list.scrollHeight - list.scrollTop - list.clientHeight <= 48) $("new-below").hidden = true;
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
render();
connection.start();
