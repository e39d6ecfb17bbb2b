// Unit tests of the slash-command parser (js/commands.js).

import assert from "node:assert/strict";
import { test } from "node:test";

import { parse } from "../js/commands.js";

test("plain text is said; // sends a leading slash", () => {
  assert.deepEqual(parse("hello"), { kind: "say", text: "hello" });
  assert.deepEqual(parse("//shrug"), { kind: "say", text: "/shrug" });
});

test("commands, aliases and their arguments", () => {
  assert.deepEqual(parse("/j rust"), { kind: "join", room: "#rust" });
  assert.deepEqual(parse("/msg bob hi  there"), { kind: "msg", to: "bob", text: "hi  there" });
  assert.deepEqual(parse("/query bob"), { kind: "msg", to: "bob", text: "" });
  assert.deepEqual(parse("/wall all"), { kind: "broadcast", text: "all" });
  assert.deepEqual(parse("/msg bob"), { kind: "error", text: "Usage: /msg nick text" });
  assert.deepEqual(parse("/nick a b"), { kind: "error", text: "Usage: /nick name" });
});

test("feature commands are known only when a feature module has them", () => {
  assert.equal(parse("/kick bob").kind, "error");
  assert.deepEqual(parse("/kick bob rude", (name) => name === "kick"), { kind: "extra", name: "kick", args: "bob rude" });
  // /leave is /part without the private-rooms module.
  assert.deepEqual(parse("/leave #a"), { kind: "part", room: "#a" });
  assert.deepEqual(parse("/leave #a", (name) => name === "leave"), { kind: "extra", name: "leave", args: "#a" });
});
