// A textarea bound to a collaborative text field: each local edit goes
// out as one text.splice (computed from the value before and after the
// input event); remote changes come in without losing the caret. While
// local splices are unacknowledged, remote states are held back (they may
// predate our own edits); once all are acknowledged the note is read
// afresh from the vault, which has them all.

import { diffToSplice, rebaseSelection, spliceContext, type Splice } from "@echo/client";

/** What NoteSync needs of a textarea. */
export interface TextField {
  value: string;
  selectionStart: number | null;
  selectionEnd: number | null;
  setSelectionRange(start: number, end: number): void;
}

export interface NoteSyncHooks {
  /**
   * Sends one splice (text.splice) with its context (the characters before it here, so that the vault
   * places it right when someone else's edit got there first); rejects when the vault refused it.
   */
  splice(splice: Splice, context: string): Promise<void>;
  /** Reads the field's current content (text.read). */
  read(): Promise<string>;
  /** Whether the field has focus (the caret matters only then). */
  focused(): boolean;
  /** A splice failed (the note is re-read). */
  onError?(error: unknown): void;
}

export class NoteSync {
  private readonly field: TextField;
  private readonly hooks: NoteSyncHooks;
  /** What the vault has (or will have, once pending splices land) as far as we know. */
  private base: string;
  private pending = 0;
  private remoteWhilePending = false;
  private composing = false;
  private edits = 0;
  private reading = false;

  constructor(field: TextField, initial: string, hooks: NoteSyncHooks) {
    this.field = field;
    this.hooks = hooks;
    this.base = initial;
    field.value = initial;
  }

  /** Unacknowledged local splices. */
  get pendingCount(): number {
    return this.pending;
  }

  /** Call on the textarea's `input` event. */
  input(): void {
    if (this.composing) return;
    this.flushLocal();
  }

  compositionStart(): void {
    this.composing = true;
  }

  compositionEnd(): void {
    this.composing = false;
    this.flushLocal();
  }

  private flushLocal(): void {
    const value = this.field.value;
    const splice = diffToSplice(this.base, value, this.field.selectionEnd ?? undefined);
    if (!splice) return;
    const context = spliceContext(this.base, splice.pos);
    this.base = value;
    this.pending++;
    this.edits++;
    this.hooks.splice(splice, context).then(
      () => this.settled(false),
      (e: unknown) => {
        this.hooks.onError?.(e);
        this.settled(true);
      },
    );
  }

  private settled(failed: boolean): void {
    this.pending--;
    if (failed) this.remoteWhilePending = true;
    if (this.pending === 0 && this.remoteWhilePending) {
      this.remoteWhilePending = false;
      this.reread();
    }
  }

  private reread(): void {
    if (this.reading) {
      this.remoteWhilePending = true;
      return;
    }
    this.reading = true;
    const edits = this.edits;
    this.hooks.read().then(
      (text) => {
        this.reading = false;
        // Typed meanwhile: this read may lack those edits; the next drain reads again.
        if (this.edits !== edits || this.pending > 0) {
          this.remoteWhilePending = true;
          if (this.pending === 0) this.reread();
          return;
        }
        // Remote states that came during the read are older than it.
        this.remoteWhilePending = false;
        this.applyRemote(text);
      },
      () => {
        this.reading = false;
      },
    );
  }

  /** The field's content as the vault pushed it (a subscription diff). */
  remote(text: string): void {
    if (this.pending > 0 || this.composing || this.reading) {
      this.remoteWhilePending = true;
      return;
    }
    this.applyRemote(text);
  }

  private applyRemote(text: string): void {
    const shown = this.field.value;
    this.base = text;
    if (text === shown) return;
    const focused = this.hooks.focused();
    const start = this.field.selectionStart ?? shown.length;
    const end = this.field.selectionEnd ?? start;
    const sel = rebaseSelection(shown, text, start, end);
    this.field.value = text;
    if (focused) this.field.setSelectionRange(sel.start, sel.end);
  }
}
