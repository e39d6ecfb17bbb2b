// The member list of the current room, with presence (joins and leaves
// arrive as `presence` frames and update it live). Each member is a button:
// it opens a small menu (message; kick, ban, promote or demote for those
// allowed, from the feature modules), so nothing needs typed commands.

import { $, el, replaceChildren } from "./dom.js";

/** Draws the member list; `onMenu(nick)` opens a member's menu (lower
 * case; null closes it). */
export function renderMembers(state, { onOpenDm, actionsFor, onMenu }) {
  if (state.phase !== "chat") return;
  const conv = state.conversations.get(state.current);
  const members = conv?.kind === "room" ? conv.members
    : conv?.kind === "dm" ? [state.me, conv.name] : [];
  $("member-count").textContent = members.length ? `(${members.length})` : "";
  // The menu of a member who has left is not shown.
  const menuFor = state.memberMenu && members.some((n) => n.toLowerCase() === state.memberMenu) ? state.memberMenu : null;
  // Redrawing replaces the buttons: the focus goes back to the same member.
  const focusedNick = document.activeElement?.closest?.("#member-list li")?.dataset.nick;
  replaceChildren($("member-list"), members.map((nick) => {
    const me = state.me !== null && nick.toLowerCase() === state.me.toLowerCase();
    const open = !me && menuFor === nick.toLowerCase();
    const button = el("button", {
      cls: "member",
      attrs: { type: "button", "aria-expanded": String(open), title: me ? "you" : `Actions for ${nick}` },
    }, [
      el("span", { cls: "dot", attrs: { "aria-hidden": "true" } }),
      el("span", { text: me ? `${nick} (you)` : nick }),
    ]);
    if (me) button.disabled = true;
    button.addEventListener("click", () => onMenu(open ? null : nick.toLowerCase()));
    let menu = null;
    if (open) {
      const actions = [{ label: "Message", run: () => onOpenDm(nick) }, ...actionsFor(conv, nick)];
      menu = el("div", { cls: "member-menu", attrs: { role: "group", "aria-label": `Actions for ${nick}` } },
        actions.map(({ label, run }) => {
          const b = el("button", { cls: "secondary", text: label, attrs: { type: "button", "data-action": label.toLowerCase() } });
          b.addEventListener("click", () => {
            onMenu(null);
            run();
          });
          return b;
        }));
    }
    return el("li", { cls: me ? "me-member" : "", attrs: { "data-nick": nick } }, [button, menu]);
  }));
  if (focusedNick) $("member-list").querySelector(`li[data-nick="${CSS.escape(focusedNick)}"] .member`)?.focus();
}
