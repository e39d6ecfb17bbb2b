// The member list of the current room, with presence (joins and leaves
// arrive as `presence` frames and update it live).

import { $, el, replaceChildren } from "./dom.js";

export function renderMembers(state, { onOpenDm }) {
  if (state.phase !== "chat") return;
  const conv = state.conversations.get(state.current);
  const members = conv?.kind === "room" ? conv.members
    : conv?.kind === "dm" ? [state.me, conv.name] : [];
  $("member-count").textContent = members.length ? `(${members.length})` : "";
  replaceChildren($("member-list"), members.map((nick) => {
    const me = state.me !== null && nick.toLowerCase() === state.me.toLowerCase();
    const li = el("li", { cls: me ? "me-member" : "", attrs: { "data-nick": nick, title: me ? "you" : `message ${nick}` } }, [
      el("span", { cls: "dot", attrs: { "aria-hidden": "true" } }),
      el("span", { text: me ? `${nick} (you)` : nick }),
    ]);
    if (!me) li.addEventListener("click", () => onOpenDm(nick));
    return li;
  }));
}
