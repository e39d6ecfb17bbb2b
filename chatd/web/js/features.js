// Optional parts of the app, switched on by the server's `welcome.features`.
//
// A feature module (private rooms, file transfer, ...) is an object
//   { feature: "name-in-welcome.features",
//     frames: { frame_type(frame, app) { ... } },   // server frames it handles
//     commands: { name(args, app) { ... } },         // extra slash commands
//     start(app) { ... } }                           // adds its own UI
// listed in MODULES below. `app` gives it `request(frame, onReply)`,
// `dispatch(event)`, `submit(line)`, `state` and `notice(text)`. Modules whose feature the server lacks are
// never started, so the UI only offers what the server can do.

import { registerCommand } from "./commands.js";
import { dice } from "./features/dice.js";
import { files } from "./features/files.js";
import { rooms } from "./features/rooms.js";

/** Feature modules, in the order they are started. */
const MODULES = [files, rooms, dice];

const frameHandlers = new Map();
/** The modules the server supports, once started. */
let active = [];

/** Starts the modules the server supports; called after every `welcome`. */
export function startFeatures(features, app) {
  frameHandlers.clear();
  active = MODULES.filter((module) => features.has(module.feature));
  for (const module of active) {
    for (const [type, handler] of Object.entries(module.frames ?? {})) frameHandlers.set(type, handler);
    for (const [name, handler] of Object.entries(module.commands ?? {})) registerCommand(name, handler);
    module.start?.(app);
  }
}

/** Tells the modules that the session has (again) a nickname or account. */
export function featuresIdentified(app) {
  for (const module of active) module.identified?.(app);
}

/** Lets the modules see every frame (e.g. `joined`), before the app acts. */
export function observeFrame(frame, app) {
  for (const module of active) module.observe?.(frame, app);
}

/** Redraws what the modules draw. */
export function renderFeatures(app) {
  for (const module of active) module.render?.(app);
}

/** What the active modules offer to do to a member of `conv` (the member
 * list's menu): `[{label, run}]`. */
export function memberActions(app, conv, nick) {
  return active.flatMap((module) => module.memberActions?.(conv, nick) ?? []);
}

/** Help lines of the active modules' commands. */
export function featureHelp() {
  return active.flatMap((module) => module.help ?? []);
}

/** Hands a frame the core app does not know to the module that does. */
export function handleFeatureFrame(frame, app) {
  const handler = frameHandlers.get(frame.type);
  if (!handler) return false;
  handler(frame, app);
  return true;
}
