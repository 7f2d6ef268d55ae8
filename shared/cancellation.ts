// Cancellation without an AbortController per request: what the routed hot path waits on (a link request, an
// HTTP request), with a real AbortSignal made only for code that asks for one.

/** A function or an object with `handleEvent`, as EventTarget listeners are. */
export type CancelListener = (() => void) | { handleEvent(): void };

/** The part of an AbortSignal that waiting on a cancel needs; an AbortSignal is one. */
export interface Cancellation {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: CancelListener, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: CancelListener): void;
}

/**
 * A cancel fired at most once. Listeners are a plain array (an AbortController is an EventTarget, several
 * times dearer to make and to listen on); `signal` makes the AbortSignal for code that needs one.
 */
export class CancelSource implements Cancellation {
  aborted = false;
  private reason: unknown;
  private listeners: CancelListener[] | undefined;
  private controller: AbortController | undefined;

  /** An AbortSignal that follows this cancel (already aborted when the cancel has fired). */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  addEventListener(_type: 'abort', listener: CancelListener): void {
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: CancelListener): void {
    const index = this.listeners?.indexOf(listener) ?? -1;
    if (index >= 0) this.listeners?.splice(index, 1);
  }

  /** Fires the cancel once: every listener is called, then forgotten. */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    const listeners = this.listeners ?? [];
    this.listeners = undefined;
    for (const listener of listeners) {
      if (typeof listener === 'function') listener();
      else listener.handleEvent();
    }
  }
}
