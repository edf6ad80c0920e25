// Frames: several messages in one port message (the engine's side:
// vault-wasm/src/frame.rs).
//
// A port message costs the browser a task on each side, about as much as a
// small call costs the engine. So the client does not post each call on its
// own: messages sent in one turn of the event loop (a loop of creates, say)
// wait in an outbox until a microtask posts them as JSON arrays, in order.
// The vault answers in frames too: `unframe` turns a received message into
// the messages it carries.

/** Posts JSON texts as frames: one message bare, several as a JSON array. */
export class Outbox {
  private queued: string[] = [];
  private scheduled = false;
  private readonly post: (text: string) => void;
  private readonly maxChars: number;
  private readonly maxMessages: number;

  /**
   * `post` sends one port message. A frame holds at most `maxBytes` of
   * UTF-8 (counted as 3 bytes per UTF-16 unit, the most it can be) and at
   * most `maxMessages` messages (the vault refuses a frame with more); a
   * longer message, already checked against the limit, travels alone.
   */
  constructor(post: (text: string) => void, maxBytes: number, maxMessages: number) {
    this.post = post;
    this.maxChars = Math.max(1, Math.floor(maxBytes / 3));
    this.maxMessages = Math.max(1, maxMessages);
  }

  /** Queues one encoded message; it is posted at the end of this turn. */
  push(json: string): void {
    this.queued.push(json);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Messages waiting to be posted. */
  get size(): number {
    return this.queued.length;
  }

  /** Posts what is queued now. */
  flush(): void {
    this.scheduled = false;
    const queued = this.queued;
    this.queued = [];
    for (const frame of packFrames(queued, this.maxChars, this.maxMessages)) this.post(frame);
  }

  /** Forgets what is queued (the port went away: those calls were failed). */
  clear(): void {
    this.queued = [];
  }
}

/** Packs JSON texts into frames of at most `maxChars` and `maxMessages` (a longer text alone). */
export function packFrames(messages: string[], maxChars: number, maxMessages: number): string[] {
  const frames: string[] = [];
  let open: string[] = [];
  // The open frame's length as an array: brackets and commas included.
  let chars = 1;
  const close = () => {
    if (open.length === 1) frames.push(open[0]!);
    else if (open.length > 1) frames.push(`[${open.join(",")}]`);
    open = [];
    chars = 1;
  };
  for (const m of messages) {
    if (open.length > 0 && (chars + m.length + 1 > maxChars || open.length >= maxMessages)) close();
    open.push(m);
    chars += m.length + 1;
  }
  close();
  return frames;
}

/** The messages a received port message carries (a frame or one message). */
export function unframe(data: unknown): unknown[] {
  return Array.isArray(data) ? data : [data];
}
