/**
 * `MeshGrpcCall`: what a meshlet channel's `createCall` returns — grpc-js's low-level call, fed
 * by grpc-js's own interceptor stack above it (so messages arrive serialised, as Buffers) — and at
 * once the request object the engine carries through `mesh.call`.
 *
 * Before the call commits, request messages are buffered for replay (up to
 * `RETRY_BUFFER_BYTES`; past that the call can no longer be retried), response headers are held,
 * and at most one read is asked of the attempt in flight. The engine's answer (`answer`) is the
 * committed attempt: from then on its grpc-js call is the caller's stream — reads, writes,
 * half-close, cancellation and the final status pass straight through.
 */
import { performance } from 'node:perf_hooks';
import { propagation, trace, type TextMapSetter } from '@opentelemetry/api';
import {
  Metadata as GrpcMetadata,
  status as Status,
  type CallCredentials,
  type InterceptingListener,
  type StatusObject,
} from '@grpc/grpc-js';
import type { CallContext, CallHandle, Endpoint, AttemptSink, TimerEntry } from '@meshlet/core';
import { EndpointAttempt } from './attempt.js';
import { MAX_TIMER_MS, StreamDeadlineError, grpcTimeoutValue } from './deadline.js';
import type { AuthContext, LowLevelCall, MessageContext, ParentCall } from './grpc-types.js';
import type { MethodInfo } from './method.js';
import { CallCancelledError, statusOfError } from './status.js';
import type { MeshChannel } from './channel.js';

/** Request bytes kept for replay per call (grpc-js's `grpc.per_rpc_retry_buffer_size` default). */
export const RETRY_BUFFER_BYTES = 256 * 1024;

export const CALLER_METADATA = 'meshlet-caller';

const SETTER: TextMapSetter<GrpcMetadata> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

interface Buffered {
  message: Buffer;
  flags: number | undefined;
}

export class MeshGrpcCall implements LowLevelCall, TimerEntry {
  /** The call's own copy of the caller's Metadata, with what the mesh adds. */
  metadata: GrpcMetadata | undefined = undefined;
  private listener: InterceptingListener | undefined = undefined;
  private credentials: CallCredentials | undefined = undefined;
  /**
   * Messages kept for replay (or, once the call is not replayable, not yet sent to an attempt):
   * the first in `held` (a unary call's only one needs no array), the others in `more`.
   */
  private held: Buffer | undefined = undefined;
  private heldFlags: number | undefined = undefined;
  private more: Buffered[] | undefined = undefined;
  private bufferedBytes = 0;
  /** False once the buffer overflowed: the call can no longer be sent again. */
  replayable = true;
  private halfClosed = false;
  /** Reads the caller asked for that no message has answered yet (before commit). */
  private readsWanted = 0;
  /** The attempt in flight, before commit. */
  private current: EndpointAttempt | undefined = undefined;
  /** The committed attempt: its stream is the caller's. */
  live: EndpointAttempt | undefined = undefined;
  private finished = false;
  private handle: CallHandle | undefined = undefined;
  /** Why the caller cancelled, once it did. */
  private cancelReason: CallCancelledError | undefined = undefined;
  /** A cancellation that came before `start`, delivered by it. */
  private pendingStatus: StatusObject | undefined = undefined;
  private startedAt = 0;
  private lastEndpoint: Endpoint | undefined = undefined;
  /** The engine's call (the same object for every attempt): the deadline after commit. */
  private ctx: CallContext | undefined = undefined;
  // The committed stream's deadline, in the channel's deadline queue (or a timer of its own).
  timerPrev: TimerEntry | undefined = undefined;
  timerNext: TimerEntry | undefined = undefined;
  timerAt = -1;
  private deadlineTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** The committed call was ended from this side: CANCELLED_HERE (the caller's cancel, the mesh closing) or DEADLINE_HERE. */
  private endedHere = NOT_HERE;

  constructor(
    readonly channel: MeshChannel,
    readonly info: MethodInfo,
    /** The caller's deadline, ms since the epoch (`Infinity`: none). */
    readonly deadlineMs: number,
    private readonly host: string,
    private readonly parent: ParentCall,
    private readonly propagateFlags: number | null | undefined,
    private readonly callNumber: number,
  ) {}

  start(metadata: GrpcMetadata, listener: InterceptingListener): void {
    // The caller's object may be reused for other calls, to other channels: what the mesh sets
    // (its caller name, trace context, grpc-timeout) goes on a copy.
    metadata = metadata.clone();
    this.metadata = metadata;
    this.listener = listener;
    this.startedAt = performance.now();
    const pending = this.pendingStatus;
    if (pending !== undefined) {
      // Cancelled before it started.
      this.pendingStatus = undefined;
      process.nextTick(finishLater, this, pending);
      return;
    }
    const state = this.channel.state;
    // The caller's own meshlet-caller is the mesh's to set (or drop).
    const caller = state.mesh.service;
    if (caller !== undefined) metadata.set(CALLER_METADATA, caller);
    else metadata.remove(CALLER_METADATA);
    state.mesh.send(this.channel.service, this, state.protocol);
  }

  /** Called by the engine (through `Protocol.bindCall`) with the handle that aborts the call. */
  bind(handle: CallHandle): void {
    this.handle = handle;
    // Cancelled while the mesh waited for its first config: the engine ends it before any attempt.
    if (this.cancelReason !== undefined) handle.abort(this.cancelReason);
  }

  sendMessageWithContext(context: MessageContext, message: Buffer): void {
    const live = this.live;
    if (live !== undefined) {
      live.write(message, context.flags, context.callback);
      return;
    }
    if (this.finished) {
      context.callback?.();
      return;
    }
    // The attempt that can still take the message: not one that ended (failed, awaiting a retry).
    const current = this.current !== undefined && !this.current.ended ? this.current : undefined;
    if (this.replayable) {
      this.bufferedBytes += message.length;
      if (this.bufferedBytes > RETRY_BUFFER_BYTES) {
        // Too much to replay: this call will not be sent again. What the attempt in flight has
        // seen needs no copy; without one, keep them for the attempt about to start.
        this.replayable = false;
        if (current !== undefined) this.dropHeld();
      }
    }
    if (this.replayable || current === undefined) this.hold(message, context.flags);
    if (current !== undefined) {
      // While replayable the bytes are ours to keep: the caller may go on (bounded by the buffer).
      if (this.replayable) {
        current.write(message, context.flags, undefined);
        context.callback?.();
      } else current.write(message, context.flags, context.callback);
    } else context.callback?.();
  }

  startRead(): void {
    const live = this.live;
    if (live !== undefined) {
      live.call.startRead();
      return;
    }
    this.readsWanted++;
    const current = this.current;
    if (current !== undefined && !current.readRequested) {
      current.readRequested = true;
      current.call.startRead();
    }
  }

  halfClose(): void {
    this.halfClosed = true;
    const target = this.live ?? this.current;
    if (target !== undefined && !target.ended) target.halfClose();
  }

  cancelWithStatus(code: number, details: string): void {
    if (this.finished) return;
    const live = this.live;
    if (live !== undefined) {
      // Its own status (CANCELLED) comes back through the attempt and ends the call.
      this.endedHere = CANCELLED_HERE;
      live.call.cancelWithStatus(code, details);
      return;
    }
    if (this.cancelReason !== undefined) return;
    this.cancelReason = new CallCancelledError(code, details);
    if (this.handle !== undefined) {
      // The engine cuts the attempt in flight (the server sees the cancellation) and rejects.
      this.handle.abort(this.cancelReason);
      return;
    }
    const status: StatusObject = { code, details, metadata: new GrpcMetadata() };
    if (this.listener === undefined) this.pendingStatus = status;
    else process.nextTick(finishLater, this, status);
  }

  getPeer(): string {
    const att = this.live ?? this.current;
    return att !== undefined ? att.call.getPeer() : (this.lastEndpoint?.address ?? this.channel.getTarget());
  }

  getCallNumber(): number {
    return this.callNumber;
  }

  setCredentials(credentials: CallCredentials): void {
    this.credentials = credentials;
  }

  getAuthContext(): AuthContext {
    const att = this.live ?? this.current;
    return att !== undefined ? att.call.getAuthContext() : null;
  }

  /** One attempt on `ep` (the protocol's transport). */
  beginAttempt(ctx: CallContext, ep: Endpoint, sink: AttemptSink<EndpointAttempt>): void {
    const att = new EndpointAttempt(this, ep, sink);
    this.current = att;
    this.lastEndpoint = ep;
    this.ctx = ctx;
    const md = this.metadata!;
    // The engine's timer bounds the attempt; grpc-js gets no deadline of its own (deadline.ts),
    // unless a parent call's deadline is to propagate, which grpc-js applies itself.
    const remaining = ctx.remainingMs();
    let deadline = Infinity;
    if (remaining !== Infinity) {
      if (this.parent === null || this.parent === undefined) md.set('grpc-timeout', grpcTimeoutValue(remaining));
      else deadline = Date.now() + remaining;
    }
    const call = this.channel
      .endpointChannel(ep)
      .createCall(this.info.path, deadline, this.host, this.parent, this.propagateFlags);
    att.call = call;
    if (this.credentials !== undefined) call.setCredentials(this.credentials);
    // The call's Metadata goes to every attempt (grpc-js copies it at start): what the mesh adds is
    // the same on each attempt but the remaining time (the caller's name at start, the call's one span here).
    if (ctx.trace !== undefined) {
      if (ctx.attempt === 1) trace.getSpan(ctx.trace)?.setAttributes(this.info.spanAttributes);
      propagation.inject(ctx.trace, md, SETTER);
    }
    ctx.onAbort(att);
    call.start(md, att);
    if (att.cut) return;
    if (this.held !== undefined) {
      att.write(this.held, this.heldFlags, undefined);
      const more = this.more;
      if (more !== undefined)
        for (let i = 0; i < more.length; i++) att.write(more[i].message, more[i].flags, undefined);
      // Not replayable: what was held for this attempt has been sent; nothing more is kept.
      if (!this.replayable) this.dropHeld();
    }
    if (this.halfClosed) att.halfClose();
    if (this.readsWanted > 0) {
      att.readRequested = true;
      call.startRead();
    }
  }

  /** The engine's answer: the committed attempt (its first message, or its final status). */
  answer(att: EndpointAttempt): void {
    if (this.finished) {
      att.cancel('meshlet: call already ended');
      return;
    }
    this.current = undefined;
    this.live = att;
    this.dropHeld();
    const listener = this.listener!;
    const headers = att.headers;
    att.headers = undefined;
    if (headers !== undefined) listener.onReceiveMetadata(headers);
    const message = att.message;
    if (message !== undefined) {
      // A stream under way: the engine no longer tracks it, so the channel does (closing cuts it),
      // and its deadline (the engine's timer ended with the attempt).
      this.channel.live.add(this);
      this.armDeadline();
      att.message = undefined;
      this.readsWanted--;
      listener.onReceiveMessage(message);
      for (; this.readsWanted > 0; this.readsWanted--) att.call.startRead();
      return;
    }
    this.finish(att.status!, att.endpoint);
  }

  /** A discarded attempt (a retried failure): make sure its grpc-js call is over. */
  discard(att: EndpointAttempt): void {
    if (this.current === att) this.current = undefined;
    att.cancel('meshlet: attempt discarded');
  }

  forwardMetadata(metadata: GrpcMetadata): void {
    this.listener!.onReceiveMetadata(metadata);
  }

  forwardMessage(message: Buffer): void {
    this.listener!.onReceiveMessage(message);
  }

  /** The engine ended the call with an error (no attempt was committed): the protocol's `fail`. */
  fail(err: unknown): void {
    if (this.finished || this.live !== undefined) return;
    this.current?.cancel('meshlet: call ended');
    this.current = undefined;
    this.finish(statusOfError(err, this.channel.service, this.info.short), this.lastEndpoint);
  }

  private hold(message: Buffer, flags: number | undefined): void {
    if (this.held === undefined) {
      this.held = message;
      this.heldFlags = flags;
    } else (this.more ??= []).push({ message, flags });
  }

  private dropHeld(): void {
    this.held = undefined;
    this.more = undefined;
  }

  /** Bounds a committed stream by what is left of the call's deadline. */
  private armDeadline(): void {
    const left = this.ctx!.remainingMs();
    if (left === Infinity) return;
    const now = performance.now();
    if (!this.channel.state.deadlines.add(this, now + left, now)) {
      this.deadlineTimer = setTimeout(onStreamDeadline, left > 0 ? Math.min(left, MAX_TIMER_MS) : 0, this);
    }
  }

  /** The deadline passed with the committed stream still open: cut it, and end the call with DEADLINE_EXCEEDED. */
  onTimer(): void {
    this.deadlineTimer = undefined;
    const live = this.live;
    if (this.finished || live === undefined) return;
    this.endedHere = DEADLINE_HERE;
    live.cancel('meshlet: deadline exceeded');
    const err = new StreamDeadlineError(this.ctx!, live.endpoint.address);
    this.finish(statusOfError(err, this.channel.service, this.info.short), live.endpoint);
  }

  /** The call's final status, to the caller, once. */
  finish(status: StatusObject, ep: Endpoint | undefined): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timerAt >= 0) this.channel.state.deadlines.remove(this);
    else if (this.deadlineTimer !== undefined) {
      clearTimeout(this.deadlineTimer);
      this.deadlineTimer = undefined;
    }
    if (this.live !== undefined) {
      this.channel.live.delete(this);
      // The engine recorded the endpoint's latency at commit; its health waited for this status.
      // The span and the service's stats end here too: an endpoint failure or the deadline (the
      // mesh's, or the server's from grpc-timeout) is an error; the caller's cancel or the mesh
      // closing is a cancellation.
      const here = this.endedHere;
      const ok = here === NOT_HERE ? healthOf(status.code) : undefined;
      const failed =
        ok === false || here === DEADLINE_HERE || (here === NOT_HERE && status.code === Status.DEADLINE_EXCEEDED);
      this.ctx!.reportOutcome(ok, failed ? status.details : undefined);
    }
    this.live = undefined;
    this.current = undefined;
    this.dropHeld();
    this.channel.state.recordCall(this, status.code, ep, performance.now() - this.startedAt);
    const listener = this.listener!;
    // grpc-js keeps this object (the listener of the endpoint call's stream) until that stream is
    // collected, well after the call has ended: what only a live call needs is let go now, so the
    // engine's call, the Metadata copy and the caller's listener chain die young instead of being
    // promoted with it (a sixth less promoted per unary call at concurrency 64).
    this.listener = undefined;
    this.ctx = undefined;
    this.handle = undefined;
    this.metadata = undefined;
    this.credentials = undefined;
    listener.onReceiveStatus(status);
  }
}

const NOT_HERE = 0;
const CANCELLED_HERE = 1;
const DEADLINE_HERE = 2;

/**
 * What a committed call's final status says of its endpoint: the classifier's endpoint failures
 * count against it; `CANCELLED` and `DEADLINE_EXCEEDED` after a call's first message say how long
 * the caller or the deadline let it run, nothing about the endpoint; any other code is a success.
 */
function healthOf(code: number): boolean | undefined {
  switch (code) {
    case Status.CANCELLED:
    case Status.DEADLINE_EXCEEDED:
      return undefined;
    case Status.UNAVAILABLE:
    case Status.INTERNAL:
    case Status.UNKNOWN:
    case Status.DATA_LOSS:
      return false;
    default:
      return true;
  }
}

function onStreamDeadline(call: MeshGrpcCall): void {
  call.onTimer();
}

function finishLater(call: MeshGrpcCall, status: StatusObject): void {
  call.finish(status, undefined);
}
