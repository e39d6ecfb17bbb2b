// The sidebar: rooms, direct conversations and the server tab, with unread
// counts; and the conversation header.

import { $, el, replaceChildren } from "./dom.js";

function item(state, conv, onSelect) {
  const li = el("li", {
    cls: [conv.key === state.current ? "current" : "", conv.unread ? "unread" : ""].join(" ").trim(),
    attrs: { "data-key": conv.key, role: "button", tabindex: "0" },
  }, [
    el("span", { cls: "name", text: conv.name }),
    conv.unread ? el("span", {
      cls: conv.mentions ? "badge mention" : "badge",
      text: String(conv.unread),
      attrs: { "aria-label": conv.mentions ? `${conv.unread} unread, ${conv.mentions} for you` : `${conv.unread} unread` },
    }) : null,
  ]);
  li.addEventListener("click", () => onSelect(conv.key));
  // A button for the keyboard too: Enter or Space opens it.
  li.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      onSelect(conv.key);
    }
  });
  return li;
}

export function renderSidebar(state, { onSelect }) {
  if (state.phase !== "chat") return;
  $("me-nick").textContent = state.me ?? "";
  $("logout").hidden = !state.loggedIn;
  const convs = [...state.conversations.values()];
  const byName = (a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase());
  replaceChildren($("rooms"), convs.filter((c) => c.kind === "room").sort(byName).map((c) => item(state, c, onSelect)));
  replaceChildren($("dms"), convs.filter((c) => c.kind === "dm").sort(byName).map((c) => item(state, c, onSelect)));
  replaceChildren($("server-convs"), convs.filter((c) => c.kind === "server").map((c) => item(state, c, onSelect)));

  const current = state.conversations.get(state.current);
  const title = !current ? "" : current.kind === "dm" ? `Conversation with ${current.name}` : current.name;
  $("conv-title").textContent = title + (current?.kind === "room" && !current.joined ? " (rejoining…)" : "");
  $("leave").hidden = !current || current.kind === "server";
  $("leave").textContent = current?.kind === "room" ? "Leave" : "Close";
  // The tab says how much waits: "(3) #rust — chatd", "(2@) …" with mentions.
  const unread = convs.reduce((n, c) => n + c.unread, 0);
  const forMe = convs.reduce((n, c) => n + c.mentions, 0);
  const count = unread ? `(${unread}${forMe ? "@" : ""}) ` : "";
  document.title = count + (state.me ? `${title} — ` : "") + "chatd";
  // A short placeholder that fits a phone; the hint is in the label.
  $("input").placeholder = !current || current.kind === "server" ? "Message" : `Message ${current.name}`;
}
