// Reducers of the connection and of who we are: the connection's status,
// the server's `welcome`, identifying (nick, login, resume) and logging out.

import { SERVER_KEY } from "./model.js";

export const sessionReducers = {
  connection(state, event) {
    // Back after a loss: said for a moment (main.js clears it).
    if (event.status === "open" && (state.connection === "reconnecting" || state.connection === "offline")) state.reconnected = true;
    if (event.status !== "open") state.reconnected = false;
    state.connection = event.status;
    state.retryIn = event.retryIn ?? 0;
    if (event.note !== undefined) state.connectionNote = event.note;
    if (event.status !== "open") {
      // Rooms must be joined again on the next connection.
      for (const conv of state.conversations.values()) {
        if (conv.kind === "room") conv.joined = false;
        // Requests in flight are lost with the connection.
        conv.history.loading = false;
      }
      state.connectBusy = false;
      state.resuming = false;
    }
  },
  welcome(state, event) {
    const w = event.welcome;
    state.welcome = w;
    state.features = new Set(w.features ?? []);
    state.authRequired = !!w.auth_required;
    state.accounts = state.features.has("accounts");
    state.registration = state.features.has("registration");
  },
  reconnected_seen(state) {
    state.reconnected = false;
  },
  identifying(state) {
    state.connectBusy = true;
    state.connectError = "";
  },
  resuming(state) {
    state.resuming = true;
    state.connectError = "";
  },
  identified(state, event) {
    state.me = event.nick;
    state.admin = !!event.admin;
    state.loggedIn = !!event.loggedIn;
    state.phase = "chat";
    state.connectBusy = false;
    state.resuming = false;
    state.connectError = "";
  },
  identify_failed(state, event) {
    state.phase = "connect";
    state.connectBusy = false;
    state.resuming = false;
    state.connectError = event.message;
  },
  logged_out(state) {
    state.phase = "connect";
    state.me = null;
    state.loggedIn = false;
    state.resuming = false;
    // What this account saw is not for whoever logs in next.
    const server = state.conversations.get(SERVER_KEY);
    state.conversations = new Map([[SERVER_KEY, server]]);
    state.current = SERVER_KEY;
    state.lastMsgId = 0;
  },
  nick_changed(state, event) {
    state.me = event.nick;
  },
};
