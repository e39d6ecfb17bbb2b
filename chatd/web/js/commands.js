// Slash commands, as in the terminal client. `parse` turns a line into an
// action for main.js; it does no I/O, so it is easy to check.

export const HELP = [
  "/join #room — join or create a room",
  "/part [#room] — leave the current room or the one named",
  "/msg nick text — send a direct message",
  "/broadcast text — send to everyone connected",
  "/nick name — change your nickname",
  "/users [#room] — who is connected, or who is in a room",
  "/rooms — list the rooms",
  "/help — this list",
  "Start a line with // to send it beginning with a single /.",
];

/** Commands added by feature modules (see features.js), by name. */
const extraCommands = new Map();

export function registerCommand(name, handler) {
  extraCommands.set(name, handler);
}

/**
 * Parses one input line. Returns an action: {kind: "say", text} for plain
 * text, {kind: <command>, ...} for commands, {kind: "error", text} for misuse.
 */
export function parse(line) {
  if (!line.startsWith("/")) return { kind: "say", text: line };
  if (line.startsWith("//")) return { kind: "say", text: line.slice(1) };
  const match = /^\/(\S+)\s*([\s\S]*)$/.exec(line);
  const name = match[1].toLowerCase();
  const rest = match[2];
  const [first = "", ...more] = rest.trim().split(/\s+/);
  const afterFirst = rest.trim().slice(first.length).replace(/^\s+/, "");
  switch (name) {
    case "join":
    case "j":
      if (!first) return usage("/join #room");
      return { kind: "join", room: first.startsWith("#") ? first : "#" + first };
    case "part":
      return { kind: "part", room: first || null };
    case "leave":
      // Private rooms (features/rooms.js) end the membership; elsewhere
      // leaving is parting.
      if (extraCommands.has(name)) return { kind: "extra", name, args: rest };
      return { kind: "part", room: first || null };
    case "msg":
    case "query":
      if (!first) return usage("/msg nick text");
      return { kind: "msg", to: first, text: afterFirst };
    case "broadcast":
    case "wall":
      if (!rest.trim()) return usage("/broadcast text");
      return { kind: "broadcast", text: rest };
    case "nick":
      if (!first || more.length) return usage("/nick name");
      return { kind: "nick", nick: first };
    case "users":
    case "who":
      return { kind: "users", room: first || null };
    case "rooms":
    case "list":
      return { kind: "rooms" };
    case "help":
    case "?":
      return { kind: "help" };
    default:
      if (extraCommands.has(name)) return { kind: "extra", name, args: rest };
      return { kind: "error", text: `Unknown command /${name}. Type /help for the list.` };
  }
}

function usage(text) {
  return { kind: "error", text: `Usage: ${text}` };
}

export function runExtra(action, app) {
  return extraCommands.get(action.name)(action.args, app);
}
