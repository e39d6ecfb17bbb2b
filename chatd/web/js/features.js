// Optional parts of the app, switched on by the server's `welcome.features`.
//
// A feature module (private rooms, file transfer, ...) is an object
//   { feature: "name-in-welcome.features",
//     frames: { frame_type(frame, app) { ... } },   // server frames it handles
//     commands: { name(args, app) { ... } },         // extra slash commands
//     start(app) { ... } }                           // adds its own UI
// listed in MODULES below. `app` gives it `request(frame)`, `dispatch(event)`,
// `state` and `notice(text)`. Modules whose feature the server lacks are
// never started, so the UI only offers what the server can do.

import { registerCommand } from "./commands.js";
import { files } from "./features/files.js";

/** Feature modules, in the order they are started. */
const MODULES = [files];

const frameHandlers = new Map();

/** Starts the modules the server supports; called after every `welcome`. */
export function startFeatures(features, app) {
  frameHandlers.clear();
  for (const module of MODULES) {
    if (!features.has(module.feature)) continue;
    for (const [type, handler] of Object.entries(module.frames ?? {})) frameHandlers.set(type, handler);
    for (const [name, handler] of Object.entries(module.commands ?? {})) registerCommand(name, handler);
    module.start?.(app);
  }
}

/** Hands a frame the core app does not know to the module that does. */
export function handleFeatureFrame(frame, app) {
  const handler = frameHandlers.get(frame.type);
  if (!handler) return false;
  handler(frame, app);
  return true;
}
