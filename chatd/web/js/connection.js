// The WebSocket to chatd: one JSON frame per text message, request ids, and
// reconnecting with back-off when the connection drops.

/** Delays before reconnect attempts, in milliseconds; the last repeats. */
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];

export class Connection {
  /**
   * @param {string} url  ws:// or wss:// address of `/ws`
   * @param {{onOpen: () => void, onFrame: (frame: object) => void,
   *          onStatus: (status: string, retryIn: number, note?: string) => void}} handlers
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.socket = null;
    this.nextId = 1;
    this.attempt = 0;
    this.timer = null;
    this.countdown = null;
    /** Set when the server must not be reconnected to (kicked, quit). */
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  open() {
    clearTimeout(this.timer);
    clearInterval(this.countdown);
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (socket !== this.socket) return;
      this.handlers.onOpen();
    });
    socket.addEventListener("message", (event) => {
      if (socket !== this.socket || typeof event.data !== "string") return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.handlers.onFrame(frame);
    });
    socket.addEventListener("close", () => {
      if (socket !== this.socket) return;
      this.socket = null;
      if (!this.stopped) this.scheduleReconnect();
    });
  }

  /** The connection works again: later drops start the back-off anew. */
  confirmed() {
    this.attempt = 0;
  }

  scheduleReconnect(note) {
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    // Jitter keeps a restarted server from being hit by every page at once.
    const wait = Math.round(delay * (0.8 + Math.random() * 0.4));
    this.attempt += 1;
    const due = Date.now() + wait;
    const tell = () => this.handlers.onStatus("reconnecting", Math.max(0, Math.ceil((due - Date.now()) / 1000)), note);
    tell();
    clearInterval(this.countdown);
    this.countdown = setInterval(tell, 1000);
    this.timer = setTimeout(() => this.open(), wait);
  }

  /** Reconnects now (the "retry" link). */
  retryNow() {
    if (this.socket) return;
    this.stopped = false;
    this.open();
  }

  /** Stops for good (after `bye` asking us not to come back, or quit). */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.countdown);
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  /** Sends a frame with a fresh id; returns the id, or null when offline. */
  request(frame) {
    if (!this.isOpen) return null;
    const id = this.nextId++;
    this.socket.send(JSON.stringify({ id, ...frame }));
    return id;
  }

  /** Sends a frame without an id. */
  send(frame) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }
}
