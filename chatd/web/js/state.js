// The app's state: one plain object, changed only by `update(state, event)`.
// Events come from the connection (see protocol.js), from the user (see
// main.js) and from the feature modules' effects. Views read the state and
// never change it.
//
// `update` hands each event to the reducer of its concern:
//   state/session.js        the connection, `welcome`, identifying
//   state/conversations.js  the sidebar: rooms, direct conversations, members
//   state/messages.js       messages, history, unread counts, read markers
//   features/files.js       file transfers (`state.files`)
//   features/rooms.js       private rooms and invitations (`state.rooms`)
// The shared helpers (keys, adding messages) are in state/model.js.

import { initialFiles, filesReducers } from "./features/files.js";
import { initialRooms, roomsReducers } from "./features/rooms.js";
import { conversationReducers } from "./state/conversations.js";
import { messageReducers } from "./state/messages.js";
import { SERVER_KEY, conversation } from "./state/model.js";
import { sessionReducers } from "./state/session.js";

export {
  HISTORY_PAGE, MAX_MESSAGES, SERVER_KEY, dmKey, mentions, newestMsgId, oldestMsgId, roomKey, roomsToRejoin,
} from "./state/model.js";

/** Event type -> the reducer that applies it. */
const REDUCERS = new Map(
  [sessionReducers, conversationReducers, messageReducers, filesReducers, roomsReducers]
    .flatMap((reducers) => Object.entries(reducers)),
);

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
    /** The member whose menu is open in the member list (lower case), if any. */
    memberMenu: null,
    /** File transfers (features/files.js). */
    files: initialFiles(),
    /** Private rooms and invitations (features/rooms.js). */
    rooms: initialRooms(),
  };
}

/** Applies one event to the state; returns the state. Unknown events
 * (such as `noop`, which only asks for a redraw) change nothing. */
export function update(state, event) {
  REDUCERS.get(event.type)?.(state, event);
  return state;
}
