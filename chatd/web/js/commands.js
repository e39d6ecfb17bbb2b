// Slash commands, one vocabulary with the terminal client (the table in
// docs/commands.md). `parse` turns a line into an action for main.js; it
// does no I/O, so it is easy to check.

export const HELP = [
  "/join #room — join or create a room",
  "/part [#room] — step out of the current room or the one named",
  "/msg nick text — send a direct message; /query nick [text] opens the conversation",
  "/broadcast text — send to everyone connected",
  "/nick name — change your nickname",
  "/who [#room] — who is in the current room, or the one named",
  "/users [#room] — who is connected, or who is in a room",
  "/rooms — list the rooms",
  "/close — close the current conversation (steps out of a room)",
  "/say text — send text as it is, even when it starts with /",
  "/logout — log out of your account",
  "/help — this list (the full table: docs/commands.md)",
  "Start a line with // to send it beginning with a single /.",
];

/** Other names for commands: the terminal client's earlier names and
 * common short forms. */
export const ALIASES = new Map([
  ["j", "join"], ["wall", "broadcast"], ["list", "rooms"], ["?", "help"],
  ["accept-invite", "accept"], ["decline-invite", "decline"], ["invitations", "invites"],
  ["op", "promote"], ["deop", "demote"], ["transfer-owner", "transfer"], ["delete-room", "delete"],
]);

/**
 * Parses one input line. Returns an action: {kind: "say", text} for plain
 * text, {kind: <command>, ...} for commands, {kind: "error", text} for misuse.
 * `isExtra(name)` says whether a feature module (features.js) has the
 * command `name`: it becomes {kind: "extra", name, args}.
 */
export function parse(line, isExtra = () => false) {
  if (!line.startsWith("/")) return { kind: "say", text: line };
  if (line.startsWith("//")) return { kind: "say", text: line.slice(1) };
  const match = /^\/(\S+)\s*([\s\S]*)$/.exec(line);
  const typed = match[1].toLowerCase();
  const name = ALIASES.get(typed) ?? typed;
  const rest = match[2];
  const [first = "", ...more] = rest.trim().split(/\s+/);
  const afterFirst = rest.trim().slice(first.length).replace(/^\s+/, "");
  switch (name) {
    case "join":
      if (!first) return usage("/join #room");
      return { kind: "join", room: roomName(first) };
    case "part":
      return { kind: "part", room: first || null };
    case "leave":
      // Private rooms (features/rooms.js) end the membership; elsewhere
      // leaving is parting.
      if (isExtra(name)) return { kind: "extra", name, args: rest };
      return { kind: "part", room: first || null };
    case "msg":
      if (!first || !afterFirst) return usage("/msg nick text");
      return { kind: "msg", to: first, text: afterFirst };
    case "query":
      if (!first) return usage("/query nick [text]");
      return { kind: "msg", to: first, text: afterFirst };
    case "broadcast":
      if (!rest.trim()) return usage("/broadcast text");
      return { kind: "broadcast", text: rest };
    case "nick":
      if (!first || more.length) return usage("/nick name");
      return { kind: "nick", nick: first };
    case "users":
      return { kind: "users", room: first ? roomName(first) : null };
    case "who":
      return { kind: "who", room: first ? roomName(first) : null };
    case "rooms":
      return { kind: "rooms" };
    case "close":
      return { kind: "close" };
    case "say":
      if (!rest.trim()) return usage("/say text");
      return { kind: "say", text: rest };
    case "logout":
      return { kind: "logout" };
    case "help":
      return { kind: "help" };
    default:
      if (isExtra(name)) return { kind: "extra", name, args: rest };
      return { kind: "error", text: `Unknown command /${name}. Type /help for the list.` };
  }
}

function roomName(word) {
  return word.startsWith("#") ? word : "#" + word;
}

function usage(text) {
  return { kind: "error", text: `Usage: ${text}` };
}
