/**
 * Admission control for one service (Envoy's max_requests / max_pending_requests):
 * up to `maxRequests` calls in flight, then up to `maxPending` callers wait in a FIFO
 * queue; beyond that a call is refused (the caller throws `OverloadedError`).
 *
 * The fast path (`tryAcquire`) is a counter check. Waiters are nodes of a doubly linked
 * list, so enqueue, hand-over and removal on abort are all O(1); each node is its own
 * abort listener (`handleEvent`), so waiting allocates one node and one promise.
 *
 * Ordering: service tier, admission step — before telemetry, deadline and retries, so
 * one logical call holds one slot across all its attempts. Queue time counts against
 * the deadline because the caller's signal (carrying the deadline) is passed to `acquire`.
 */

class Waiter {
  prev: Waiter | undefined = undefined;
  next: Waiter | undefined = undefined;
  resolve!: () => void;
  reject!: (reason: unknown) => void;
  readonly promise: Promise<void>;

  constructor(
    private readonly limiter: ConcurrencyLimiter,
    readonly signal: AbortSignal | undefined,
  ) {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** The abort listener: leave the queue and reject with the signal's reason. */
  handleEvent(): void {
    this.limiter.abandon(this);
  }
}

export class ConcurrencyLimiter {
  private maxRequests: number;
  private maxPending: number;
  private active = 0;
  private queued = 0;
  private head: Waiter | undefined = undefined;
  private tail: Waiter | undefined = undefined;
  private closedWith: Error | undefined = undefined;

  /** @param maxRequests slots in flight (config default 1024); @param maxPending queued waiters (config default 1024). */
  constructor(maxRequests: number, maxPending: number) {
    this.maxRequests = maxRequests;
    this.maxPending = maxPending;
  }

  /** Calls holding a slot. */
  get inFlight(): number {
    return this.active;
  }

  /** Callers waiting for a slot. */
  get pending(): number {
    return this.queued;
  }

  /** Takes a slot if one is free and nobody is queued ahead. Fast path; pair with `release()`. */
  tryAcquire(): boolean {
    if (this.active < this.maxRequests && this.head === undefined && this.closedWith === undefined) {
      this.active++;
      return true;
    }
    return false;
  }

  /**
   * Queues for a slot; call only after `tryAcquire` failed. Resolves when a slot is handed
   * over (FIFO) — from then on the caller owns it and must `release()` it, even if it
   * gives up. Returns false when `maxPending` callers already wait. Rejects with
   * `signal.reason` if the signal aborts while queued, or with the close reason.
   */
  acquire(signal?: AbortSignal): Promise<void> | false {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    if (signal?.aborted) return Promise.reject(signal.reason);
    // A slot may have freed between tryAcquire and here (nothing queued ahead).
    if (this.tryAcquire()) return Promise.resolve();
    if (this.queued >= this.maxPending) return false;
    const w = new Waiter(this, signal);
    if (this.tail === undefined) {
      this.head = this.tail = w;
    } else {
      w.prev = this.tail;
      this.tail.next = w;
      this.tail = w;
    }
    this.queued++;
    signal?.addEventListener('abort', w);
    return w.promise;
  }

  /** Gives a slot back: handed to the oldest waiter if any (and the limit allows), else freed. */
  release(): void {
    // After setLimits lowered maxRequests, shrink to the new limit before handing over.
    if (this.head !== undefined && this.active <= this.maxRequests) {
      this.handOver(this.dequeue()!);
      return;
    }
    if (this.active > 0) this.active--;
  }

  /** Live config update. Never drops queued waiters; a higher `maxRequests` admits them at once. */
  setLimits(maxRequests: number, maxPending: number): void {
    this.maxRequests = maxRequests;
    this.maxPending = maxPending;
    while (this.head !== undefined && this.active < this.maxRequests && this.closedWith === undefined) {
      this.active++;
      this.handOver(this.dequeue()!);
    }
  }

  /** Rejects every waiter with `reason`; later `acquire` calls reject too and `tryAcquire` fails. */
  close(reason: Error): void {
    this.closedWith = reason;
    let w = this.head;
    this.head = this.tail = undefined;
    this.queued = 0;
    while (w !== undefined) {
      const next = w.next;
      w.prev = w.next = undefined;
      w.signal?.removeEventListener('abort', w);
      w.reject(reason);
      w = next;
    }
  }

  /** @internal Called by a waiter whose signal aborted. */
  abandon(w: Waiter): void {
    // Already handed a slot or rejected by close: nothing to undo.
    if (w.prev === undefined && this.head !== w) return;
    this.unlink(w);
    w.signal?.removeEventListener('abort', w);
    w.reject(w.signal?.reason);
  }

  private handOver(w: Waiter): void {
    w.signal?.removeEventListener('abort', w);
    w.resolve();
  }

  private dequeue(): Waiter | undefined {
    const w = this.head;
    if (w !== undefined) this.unlink(w);
    return w;
  }

  private unlink(w: Waiter): void {
    if (w.prev === undefined) this.head = w.next;
    else w.prev.next = w.next;
    if (w.next === undefined) this.tail = w.prev;
    else w.next.prev = w.prev;
    w.prev = w.next = undefined;
    this.queued--;
  }
}
