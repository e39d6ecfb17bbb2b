// Dice, when the server has the `dice` plugin: `/roll 2d6+1` is sent to the
// current room or person, and the server replaces it with the result.

export const dice = {
  feature: "dice",
  commands: {
    roll: (args, app) => app.submit(`//roll ${args}`.trimEnd()),
  },
  help: ["/roll [dice] [label] — roll dice for everyone here, e.g. /roll 2d6+1 for damage"],
};
