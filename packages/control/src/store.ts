/**
 * Where the control server keeps its state: the current config snapshot, the live
 * self-registrations and the connected clients (their subscriptions and ACK/NACK state).
 *
 * The server talks to its state through `ControlStore` only, so a highly available store (etcd,
 * several control servers sharing one view) can replace `MemoryStore` without touching the
 * stream logic. The contract an implementation must keep:
 *
 * - **Reads are synchronous** and come from the store's local view. An etcd store keeps that view
 *   fed by a watch (the usual design of control planes: a local cache over a consistent store),
 *   so a push never waits on a round trip.
 * - **Writes** may complete asynchronously (`void | Promise<void>`); the server never awaits them
 *   on the push path and reports a rejected write through its logger. The local view reflects a
 *   write as soon as the method returns (read-your-writes in one process).
 * - **`watch(listener)`** reports every change to registrations or the config, whoever made it
 *   (this process or, for a shared store, another replica), so the server can rebuild and push.
 *   A `MemoryStore` calls listeners synchronously from the writing method.
 * - Registrations are keyed by (node id, service, address). `replaceRegistrations(nodeId, …)` sets
 *   a node's whole set (state of the world, as the protocol sends it); an empty list removes them.
 * - Client records are informational (admin `/clients`, `meshlet check`); they do not drive pushes.
 *   `putClient` is called on every ACK and NACK with the same (mutated) record object, so a remote
 *   store should coalesce those writes (e.g. flush each client's latest record once a second)
 *   rather than write through.
 */

/** The config the server serves, as loaded from the file. */
export interface StoredConfig {
  /** File it came from. */
  path: string;
  /** The raw `{ services }` object as written in the file (validated). */
  services: Record<string, Record<string, unknown>>;
  /** When it was loaded (ms since the epoch). */
  loadedAt: number;
}

/** One self-registered endpoint. */
export interface StoredRegistration {
  nodeId: string;
  service: string;
  /** `host:port` */
  address: string;
  /** 1 … 1 000 000. */
  weight: number;
  zone: string | undefined;
  metadata: Record<string, string>;
  /** When the node first announced it (ms since the epoch). */
  since: number;
}

/** A NACK a client sent: the version it rejected and why. */
export interface NackRecord {
  typeUrl: string;
  version: string;
  reason: string;
  /** ms since the epoch */
  at: number;
}

/** A connected client (one stream). */
export interface ClientRecord {
  /** Server-assigned id of the stream (unique per server process). */
  streamId: string;
  nodeId: string;
  /** `node.cluster`: the service the process is, may be empty. */
  service: string;
  zone: string;
  /** Peer address of the stream as grpc-js reports it. */
  peer: string;
  userAgent: string;
  /** ms since the epoch */
  connectedAt: number;
  /** Type URLs subscribed to (wildcard). */
  subscriptions: string[];
  /** Last ACKed version per type URL. */
  acked: Record<string, string>;
  /** Last version sent per type URL. */
  sent: Record<string, string>;
  lastNack: NackRecord | undefined;
}

export type StoreChange = { kind: 'config' } | { kind: 'registrations'; nodeId: string; services: readonly string[] };

export interface ControlStore {
  getConfig(): StoredConfig | undefined;
  setConfig(config: StoredConfig): void | Promise<void>;

  /** Every registration, in no particular order. */
  listRegistrations(): readonly StoredRegistration[];
  /** Registrations of one service. */
  registrationsOf(service: string): readonly StoredRegistration[];
  /** Registrations of one node. */
  registrationsOfNode(nodeId: string): readonly StoredRegistration[];
  /** Replaces a node's whole set; `[]` withdraws every registration of the node. */
  replaceRegistrations(nodeId: string, registrations: readonly StoredRegistration[]): void | Promise<void>;

  listClients(): readonly ClientRecord[];
  getClient(streamId: string): ClientRecord | undefined;
  putClient(client: ClientRecord): void | Promise<void>;
  removeClient(streamId: string): void | Promise<void>;

  /** Calls `listener` on every config or registration change. Returns an unsubscribe function. */
  watch(listener: (change: StoreChange) => void): () => void;
  close(): void | Promise<void>;
}

/** `ControlStore` in this process's memory: state is lost when the server stops. */
export class MemoryStore implements ControlStore {
  private config: StoredConfig | undefined;
  /** nodeId → (service + ' ' + address → registration) */
  private readonly byNode = new Map<string, Map<string, StoredRegistration>>();
  /** service → (nodeId + ' ' + address → registration) */
  private readonly byService = new Map<string, Map<string, StoredRegistration>>();
  private readonly clients = new Map<string, ClientRecord>();
  private readonly listeners = new Set<(change: StoreChange) => void>();

  getConfig(): StoredConfig | undefined {
    return this.config;
  }

  setConfig(config: StoredConfig): void {
    this.config = config;
    this.emit({ kind: 'config' });
  }

  listRegistrations(): readonly StoredRegistration[] {
    const out: StoredRegistration[] = [];
    for (const regs of this.byNode.values()) for (const r of regs.values()) out.push(r);
    return out;
  }

  registrationsOf(service: string): readonly StoredRegistration[] {
    const regs = this.byService.get(service);
    return regs === undefined ? [] : [...regs.values()];
  }

  registrationsOfNode(nodeId: string): readonly StoredRegistration[] {
    const regs = this.byNode.get(nodeId);
    return regs === undefined ? [] : [...regs.values()];
  }

  replaceRegistrations(nodeId: string, registrations: readonly StoredRegistration[]): void {
    const touched = new Set<string>();
    const old = this.byNode.get(nodeId);
    if (old !== undefined) {
      for (const r of old.values()) {
        touched.add(r.service);
        const set = this.byService.get(r.service);
        set?.delete(`${nodeId} ${r.address}`);
        if (set !== undefined && set.size === 0) this.byService.delete(r.service);
      }
    }
    if (registrations.length === 0) {
      this.byNode.delete(nodeId);
    } else {
      const next = new Map<string, StoredRegistration>();
      for (const r of registrations) {
        next.set(`${r.service} ${r.address}`, r);
        touched.add(r.service);
        let set = this.byService.get(r.service);
        if (set === undefined) this.byService.set(r.service, (set = new Map()));
        set.set(`${nodeId} ${r.address}`, r);
      }
      this.byNode.set(nodeId, next);
    }
    if (touched.size > 0) this.emit({ kind: 'registrations', nodeId, services: [...touched] });
  }

  listClients(): readonly ClientRecord[] {
    return [...this.clients.values()];
  }

  getClient(streamId: string): ClientRecord | undefined {
    return this.clients.get(streamId);
  }

  putClient(client: ClientRecord): void {
    this.clients.set(client.streamId, client);
  }

  removeClient(streamId: string): void {
    this.clients.delete(streamId);
  }

  watch(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  close(): void {
    this.listeners.clear();
  }

  private emit(change: StoreChange): void {
    for (const l of this.listeners) l(change);
  }
}
