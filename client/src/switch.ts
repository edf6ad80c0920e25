// One connection, more than one way to the vault over its life: the vault's
// iframe first, the first-party vault window once the app asks for it
// (`Vault.openWindow()`, from a click, where the iframe cannot reach the
// vault's storage). The connection above sees one `Transport`; this one
// passes everything to the way in use and drops whatever the others say.

import type { Transport, TransportSink } from "./transport.js";

/** A [`Transport`] that is one of several, switched by `use`. */
export class SwitchTransport implements Transport {
  private currentValue: Transport;
  private sink: TransportSink | null = null;
  private closed = false;

  constructor(first: Transport) {
    this.currentValue = first;
  }

  /** The way in use. */
  get current(): Transport {
    return this.currentValue;
  }

  open(sink: TransportSink): void {
    this.sink = sink;
    this.openInner(this.currentValue);
  }

  /**
   * From now on the vault is reached through `next`; the previous way is
   * closed (its link, if any, goes with it). The caller starts an attempt
   * on it (the connection's `reconnect()`).
   */
  use(next: Transport): void {
    if (this.closed || next === this.currentValue) return;
    const previous = this.currentValue;
    this.currentValue = next;
    previous.stop();
    previous.close();
    if (this.sink) this.openInner(next);
  }

  connect(fresh: boolean): void {
    if (!this.closed) this.currentValue.connect(fresh);
  }

  stop(): void {
    this.currentValue.stop();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.currentValue.close();
    this.sink = null;
  }

  /** Opens `inner` with a sink that forwards only while it is the way in use. */
  private openInner(inner: Transport): void {
    const live = () => !this.closed && this.currentValue === inner && this.sink !== null;
    inner.open({
      reached: () => {
        if (live()) this.sink!.reached();
      },
      link: (link) => {
        if (live()) this.sink!.link(link);
        else link.close();
      },
      refused: (state, error) => {
        if (live()) this.sink!.refused(state, error);
      },
      dropped: (error, retry) => {
        if (live()) this.sink!.dropped(error, retry);
      },
      again: () => {
        if (live()) this.sink!.again();
      },
    });
  }
}
