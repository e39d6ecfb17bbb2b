// The connect screen: a nickname, or user name and password when the
// server has accounts (and "create account" when it allows registration).

import { $ } from "./dom.js";

export function renderConnect(state) {
  $("connect").hidden = state.phase !== "connect";
  $("chat").hidden = state.phase !== "chat";
  if (state.phase !== "connect") return;
  const ready = state.connection === "open" && state.welcome !== null;
  $("nick-label").textContent = state.authRequired ? "User name" : "Nickname";
  $("password-row").hidden = !state.authRequired;
  $("password").required = state.authRequired;
  $("register-button").hidden = !(state.authRequired && state.registration);
  $("connect-button").textContent = state.authRequired ? "Log in" : "Join the chat";
  $("connect-button").disabled = !ready || state.connectBusy;
  $("register-button").disabled = !ready || state.connectBusy;
  let info;
  if (state.connection === "reconnecting") info = `Cannot reach the server; retrying in ${state.retryIn} s…`;
  else if (!ready) info = "Connecting to the server…";
  else if (state.authRequired) info = state.registration
    ? "Log in, or create an account with a new user name and password."
    : "Log in with your account.";
  else info = "Choose a nickname: a letter, then letters, digits, _ or -.";
  $("connect-info").textContent = info;
  $("connect-error").textContent = state.connectError;
}
