// The connection banner and the body's `data-connection` attribute.

import { $ } from "./dom.js";

export function renderStatus(state) {
  document.body.dataset.connection = state.connection;
  const banner = $("status");
  let text = "";
  if (state.connection === "reconnecting") {
    const when = state.retryIn > 0 ? `in ${state.retryIn} s` : "now";
    text = `${state.connectionNote || "Connection lost."} Reconnecting ${when}… Your typing is kept.`;
  } else if (state.connection === "offline") {
    text = state.connectionNote || "Disconnected.";
  } else if (state.connection === "connecting" && state.phase === "chat") {
    text = "Connecting…";
  } else if (state.connection === "open" && state.reconnected) {
    text = "Reconnected.";
  }
  banner.hidden = text === "";
  banner.textContent = text;
  banner.dataset.kind = state.connection === "open" ? "ok" : "warning";
}
