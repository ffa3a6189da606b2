import type { Clock } from './clock.js';

/** An entry of a TimerQueue: the queue links the entries themselves, so adding allocates nothing. */
export interface TimerEntry {
  timerPrev: TimerEntry | undefined;
  timerNext: TimerEntry | undefined;
  /** Clock time at which `onTimer` fires; -1 while not queued. */
  timerAt: number;
  onTimer(): void;
}

/**
 * Timeouts that expire in the order they were added, under one Node timer.
 *
 * Most attempts of a service get the same timeout (the request deadline or the per-try
 * timeout), so their expiries arrive in insertion order: a FIFO linked list with a single
 * timer armed for its head does the work of one `setTimeout` per attempt at the cost of
 * two pointer writes. An entry due earlier than the tail (a retry with a shorter remaining
 * deadline) is refused by `add`, and the caller falls back to its own `setTimeout`.
 *
 * The timer keeps the process alive only while entries are queued (a pending deadline
 * must fire even when nothing else holds the event loop); once the queue empties it is
 * unref'd rather than cleared, so steady traffic neither clears nor re-creates it.
 */
export class TimerQueue {
  private head: TimerEntry | undefined;
  private tail: TimerEntry | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Clock time the armed timer fires at. */
  private armedAt = Number.POSITIVE_INFINITY;

  constructor(private readonly clock: Clock) {}

  /** Queues `entry` to fire at `at`; false (nothing queued) if that is earlier than the tail's time. */
  add(entry: TimerEntry, at: number, now: number): boolean {
    const tail = this.tail;
    if (tail !== undefined && at < tail.timerAt) return false;
    entry.timerAt = at;
    entry.timerPrev = tail;
    entry.timerNext = undefined;
    if (tail === undefined) this.head = entry;
    else tail.timerNext = entry;
    this.tail = entry;
    if (this.timer === undefined || at < this.armedAt) this.arm(at, now);
    else if (tail === undefined) this.timer.ref();
    return true;
  }

  /** Unqueues `entry` if it is queued. O(1). The armed timer stays; when it fires it re-arms for the new head. */
  remove(entry: TimerEntry): void {
    if (entry.timerAt < 0) return;
    const prev = entry.timerPrev;
    const next = entry.timerNext;
    if (prev === undefined) this.head = next;
    else prev.timerNext = next;
    if (next === undefined) this.tail = prev;
    else next.timerPrev = prev;
    entry.timerPrev = entry.timerNext = undefined;
    entry.timerAt = -1;
    if (this.head === undefined) this.timer?.unref();
  }

  /** Drops every entry without firing and stops the timer. */
  clear(): void {
    for (let e = this.head; e !== undefined;) {
      const next = e.timerNext;
      e.timerPrev = e.timerNext = undefined;
      e.timerAt = -1;
      e = next;
    }
    this.head = this.tail = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
  }

  private arm(at: number, now: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedAt = at;
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(at - now)));
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    // Node timers may fire up to ~1 ms early relative to a fractional clock: allow for it.
    while (this.head !== undefined && this.head.timerAt <= now + 1) {
      const entry = this.head;
      this.remove(entry);
      entry.onTimer();
    }
    if (this.head !== undefined) this.arm(this.head.timerAt, now);
  };
}
