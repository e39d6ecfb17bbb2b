// The connect screen: a nickname; with accounts, a password to log in (and
// "create account" when the server allows registration). When the server
// also allows guests, the password may be left empty to chat as a guest.

import { $ } from "./dom.js";

export function renderConnect(state) {
  $("connect").hidden = state.phase !== "connect";
  $("chat").hidden = state.phase !== "chat";
  if (state.phase !== "connect") return;
  const ready = state.connection === "open" && state.welcome !== null;
  $("nick-label").textContent = state.authRequired ? "User name" : state.accounts ? "Nickname or user name" : "Nickname";
  $("password-row").hidden = !state.accounts;
  $("password").required = state.authRequired;
  $("register-button").hidden = !(state.accounts && state.registration);
  $("connect-button").textContent = state.authRequired ? "Log in" : "Join the chat";
  const busy = !ready || state.connectBusy || state.resuming;
  $("connect-button").disabled = busy;
  $("register-button").disabled = busy;
  let info;
  if (state.connection === "reconnecting") info = `Cannot reach the server; retrying in ${state.retryIn} s…`;
  else if (!ready) info = "Connecting to the server…";
  else if (state.resuming) info = "Logging you in again…";
  else if (state.authRequired) info = state.registration
    ? "Log in, or create an account with a new user name and password."
    : "Log in with your account.";
  else if (state.accounts) info = "Choose a nickname and leave the password empty to chat as a guest, or log in with your account"
    + (state.registration ? " (or create one)." : ".");
  else info = "Choose a nickname: a letter, then letters, digits, _ or -.";
  $("connect-info").textContent = info;
  $("connect-error").textContent = state.connectError;
}
