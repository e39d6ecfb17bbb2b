// Optional parts of the app, switched on by the server's `welcome.features`.
//
// A feature module (private rooms, file transfer, ...) is an object of pure
// parts and effects, with no state of its own (its state is a part of
// `state`, created in state.js and changed by its `reducers`):
//   { feature: "name-in-welcome.features",
//     reducers: { event_type(state, event) { ... } }, // its part of `update`
//     frames: ["frame_type", ...],     // server frames that become events
//     afterFrame(frame, app),          // requests a frame's event calls for
//     commands: { name(args, app) },   // extra slash commands
//     help: ["/name — ..."],
//     start(app), identified(app), observe(frame, app), // connection effects
//     wire(app),                       // DOM listeners, once, at start
//     view(state, app),                // draws its part of the page
//     memberActions(state, conv, nick, app), leaveRoom(app, room) }
// listed in MODULES below. `app` gives it `state`, `dispatch(event)`,
// `request(frame, onReply)`, `submit(line)` and `notice(text)`. Modules
// whose feature the server lacks are never started nor drawn, so the UI only
// offers what the server can do.

import { dice } from "./features/dice.js";
import { files } from "./features/files.js";
import { rooms } from "./features/rooms.js";

/** Feature modules, in the order they are started. */
export const MODULES = [files, rooms, dice];

/** The modules the server supports (per its latest `welcome`). */
function active(state) {
  return MODULES.filter((module) => state.features.has(module.feature));
}

/** Connects every module's controls to the page; once, at start (their
 * controls stay hidden while the server lacks the feature). */
export function wireFeatures(app) {
  for (const module of MODULES) module.wire?.(app);
}

/** Starts the modules the server supports; called after every `welcome`. */
export function startFeatures(app) {
  for (const module of active(app.state)) module.start?.(app);
}

/** Tells the modules that the session has (again) a nickname or account. */
export function featuresIdentified(app) {
  for (const module of active(app.state)) module.identified?.(app);
}

/** Lets the modules see every frame (e.g. `joined`), before the app acts. */
export function observeFrame(frame, app) {
  for (const module of active(app.state)) module.observe?.(frame, app);
}

/** Draws what the modules draw. */
export function renderFeatures(state, app) {
  for (const module of active(state)) module.view?.(state, app);
}

/** What the active modules offer to do to a member of `conv` (the member
 * list's menu): `[{label, run}]`. */
export function memberActions(app, conv, nick) {
  return active(app.state).flatMap((module) => module.memberActions?.(app.state, conv, nick, app) ?? []);
}

/** Whether a module ended a membership of `room` (the header's Leave). */
export function leaveRoom(app, room) {
  return active(app.state).some((module) => module.leaveRoom?.(app, room));
}

/** Help lines of the active modules' commands. */
export function featureHelp(state) {
  return active(state).flatMap((module) => module.help ?? []);
}

/** The active module's command `name`, if any. */
export function featureCommand(state, name) {
  for (const module of active(state)) {
    const command = module.commands?.[name];
    if (command) return command;
  }
  return undefined;
}

/** Hands a frame the core app does not know to the module that does:
 * it becomes the event of the same name. */
export function handleFeatureFrame(frame, app) {
  const module = active(app.state).find((m) => m.frames?.includes(frame.type));
  if (!module) return false;
  app.dispatch({ type: frame.type, frame });
  module.afterFrame?.(frame, app);
  return true;
}
