// Dice, when the server has the `dice` plugin: `/roll 2d6+1` is sent to the
// current room or person, and the server replaces it with the result for
// them. (The plugin does not send the result back to the roller.)

export const dice = {
  feature: "dice",
  commands: {
    roll: (args, app) => {
      const sent = app.submit(`//roll ${args}`.trimEnd());
      if (sent) app.notice("Rolled: the others see the result (the server does not send it back to you).");
      return sent;
    },
  },
  help: ["/roll [dice] [label] — roll dice for everyone here, e.g. /roll 2d6+1 for damage"],
};
