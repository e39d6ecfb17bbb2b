// The settings in the sidebar: the colour theme (like the system, light or
// dark) and opt-in desktop notifications for mentions and direct messages.
// Both are remembered in this browser's localStorage (no secrets there).

import { $ } from "./view/dom.js";

const THEME_KEY = "chatd.theme";
const NOTIFY_KEY = "chatd.notify";

function stored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function store(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Storage may be off (private windows): the choice lasts this page.
  }
}

function applyTheme(theme) {
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function notificationsOn() {
  return stored(NOTIFY_KEY) === "on" && "Notification" in window && Notification.permission === "granted";
}

export function wireSettings(app) {
  const theme = stored(THEME_KEY) ?? "system";
  $("theme").value = theme;
  applyTheme(theme);
  $("theme").addEventListener("change", () => {
    store(THEME_KEY, $("theme").value);
    applyTheme($("theme").value);
  });

  const toggle = $("notify-toggle");
  toggle.checked = notificationsOn();
  toggle.addEventListener("change", async () => {
    if (!toggle.checked) {
      store(NOTIFY_KEY, "off");
      return;
    }
    if (!("Notification" in window)) {
      toggle.checked = false;
      app.notice("This browser cannot show desktop notifications.", true);
      return;
    }
    const permission = await Notification.requestPermission();
    toggle.checked = permission === "granted";
    store(NOTIFY_KEY, toggle.checked ? "on" : "off");
    if (!toggle.checked) app.notice("Notifications are blocked for this site; allow them in the browser's site settings.", true);
  });
}

/** A desktop notification for a message that mentions us or is direct,
 * when switched on and the page is not being looked at. */
export function notifyAbout(frame, state) {
  if (!notificationsOn() || document.visibilityState === "visible") return;
  if (frame.from?.toLowerCase() === state.me?.toLowerCase()) return;
  const where = frame.kind === "direct" ? "direct message" : frame.room ?? "broadcast";
  const note = new Notification(`${frame.from} (${where})`, { body: frame.text, tag: `chatd-${where}` });
  note.onclick = () => window.focus();
}
