// The chatd protocol as the app uses it: request frames (docs/protocol.md)
// and error codes turned into words a person understands.

export const PROTOCOL_VERSION = 1;

export const requests = {
  hello: () => ({ type: "hello", protocol: PROTOCOL_VERSION, client: "chatd-web/1" }),
  nick: (nick) => ({ type: "nick", nick }),
  login: (user, password) => ({ type: "login", user, password }),
  register: (user, password) => ({ type: "register", user, password }),
  logout: () => ({ type: "logout" }),
  // The token is never in the page: the server takes it from the cookie.
  resume: (lastMsgId) => (lastMsgId ? { type: "resume", last_msg_id: lastMsgId } : { type: "resume" }),
  /** A conversation ({room} or {with}); `before` a msg_id, or the latest. */
  history: (target, before, limit) => ({ type: "history", ...target, ...(before ? { before } : {}), limit }),
  read: (target, msgId) => ({ type: "read", ...target, msg_id: msgId }),
  join: (room) => ({ type: "join", room }),
  part: (room) => ({ type: "part", room }),
  say: (room, text) => ({ type: "say", room, text }),
  msg: (to, text) => ({ type: "msg", to, text }),
  broadcast: (text) => ({ type: "broadcast", text }),
  users: (room) => (room ? { type: "users", room } : { type: "users" }),
  rooms: () => ({ type: "rooms" }),
  ping: () => ({ type: "ping" }),
  quit: () => ({ type: "quit", reason: "closed the page" }),
};

/** Explanations for codes whose server message is written for developers. */
const FRIENDLY = {
  auth_failed: "Wrong user name or password.",
  account_exists: "That user name is already registered. Log in instead, or choose another name.",
  registration_closed: "This server does not accept new accounts. Log in with an existing one.",
  tls_required: "This server accepts passwords only over an encrypted (https) connection.",
  account_disabled: "This account has been disabled. Ask the server's operator.",
  already_logged_in: "You are already logged in.",
  auth_required: "Log in first.",
  nick_taken: "That nickname is already in use. Choose another one.",
  server_full: "The server is full right now. Try again in a little while.",
  rate_limited: "You are sending too fast; that message was dropped. Wait a moment.",
  slow_consumer: "The connection was too slow to keep up, so the server closed it.",
  shutting_down: "The server is restarting.",
  frame_too_large: "That message is too long for the server.",
  server_busy: "The server is busy right now. Try again in a few seconds.",
  feature_disabled: "This server does not offer that feature.",
  invalid_token: "Your saved login has expired or was ended. Log in again.",
  not_stored: "The server could not store that message; it may not have been delivered. Try again.",
};

/** The text to show for an `error` or `bye` frame. */
export function describeError(code, message) {
  const friendly = FRIENDLY[code];
  if (!friendly) return capitalise(message || code);
  // Throttling and password rules carry the details (how long, how many);
  // a guest taking a registered name is told to log in.
  if (code === "throttled" || code === "invalid_password") return capitalise(message);
  if (code === "nick_taken" && /log in/i.test(message ?? "")) return capitalise(message);
  return friendly;
}

function capitalise(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : "";
}

/** Whether a frame answers a request (rather than being pushed to us). */
export function replyId(frame) {
  return typeof frame.id === "number" ? frame.id : null;
}
