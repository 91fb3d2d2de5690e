// The Store on etcd v3 (Debian's etcd-server 3.4), for when one machine's
// SQLite is not enough. etcd keys are PREFIX + the Store's key; an object's
// resourceVersion is the mod revision of its key, filled into the JSON on
// read (the value keeps the placeholder, as the apiserver never stores it
// either). create is a txn on create_revision == 0, update and delete a txn
// on mod_revision == the expected one, with a range of the key on failure
// to tell NotFound from Conflict. gRPC is asynchronous and the Store is not,
// so the etcd client runs in a worker (etcd-worker.ts) and each call waits
// for its answer.
//
// Watch, as the apiserver's watch cache: one etcd watch on the prefix from
// the revision the store opened at feeds the events of the last KEEP
// revisions in memory; a watch from a revision in that window replays them,
// one from before it is Gone (410) and the client lists again. Writes of
// other servers on the same etcd arrive through that watch too.
//
// Reads, as the apiserver's watch cache serves them: the prefix is listed
// once at open and kept current by that watch and by our own writes, so a
// get or a list is a lookup here, not a round trip (the server holds the
// prefix alone; a failed compare-and-swap first brings the cache up to what
// won). If the watch must start again (etcd compacted past it while away),
// a new snapshot replaces the cache and what changed in the gap reaches the
// watchers as events.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { bundledOr } from '../../runtime/container';
import { StoreError, type Cancel, type ListResult, type Store, type Stored, type WatchEvent } from './types';
import type { Notice, RawKv, Reply, Request, Snapshot, WorkerInit } from './etcd-worker';

/** Revisions of history kept in etcd, and events in the watch window (SQLite's log keeps as many). */
const KEEP = 10000;
/** The lease of a server's claim on its prefix, in seconds (a dead server's claim lasts this long). */
const LOCK_TTL = 10;
/** etcd's key prefix: its keys are /mycontainer/registry/..., beside a real apiserver's /registry/... */
export const DEFAULT_ETCD_PREFIX = '/mycontainer';

export interface EtcdOptions {
  prefix?: string;
  /** Take the prefix for this holder (a server: host, pid, data dir); a second one fails at the start. */
  owner?: string;
  /** Deadline of one etcd call (5 s). */
  timeoutMs?: number;
  /** History kept (KEEP), compacted every tenth of it written: smaller in a test. */
  keep?: number;
}

interface Watcher {
  prefix: string;
  after: number;
  onEvent: (e: WatchEvent) => void;
}

/** k3s's --datastore-endpoint for etcd: http://HOST:PORT, several separated by commas. */
export function etcdEndpoints(endpoint: string): string[] {
  const list = endpoint.split(',').map((e) => e.trim()).filter((e) => e !== '');
  for (const e of list) {
    if (!/^http:\/\/[^/\s]+:\d+\/?$/.test(e)) throw new Error(`datastore endpoint "${endpoint}": want etcd's client URL, http://HOST:PORT (several separated by commas; TLS is not supported yet)`);
  }
  if (list.length === 0) throw new Error('datastore endpoint is empty: want http://HOST:PORT of etcd');
  return list;
}

export class EtcdStore implements Store {
  private readonly worker: Worker;
  private readonly flag: Int32Array;
  private readonly replies: MessagePort;
  private readonly timeoutMs: number;
  private readonly watchers = new Set<Watcher>();
  /** Every event under the prefix after `oldest`, in revision order. */
  private readonly window: WatchEvent[] = [];
  /** The prefix's current keys and the revision they are current at. */
  private readonly cache = new Map<string, Stored>();
  private cacheRevision = 0;
  private oldest: number;
  /** Events drained but not yet given to the watchers (a watcher that writes does not reorder them). */
  private queue: WatchEvent[] = [];
  private dispatching = false;
  private writes = 0;
  private closed = false;
  private readonly keep: number;

  /** Connects to etcd at `endpoint`; throws, naming it, when it does not answer. */
  constructor(readonly endpoint: string, o: EtcdOptions = {}) {
    const endpoints = etcdEndpoints(endpoint);
    this.timeoutMs = o.timeoutMs ?? 5000;
    this.keep = o.keep ?? KEEP;
    const shared = new SharedArrayBuffer(4);
    this.flag = new Int32Array(shared);
    const { port1, port2 } = new MessageChannel();
    this.replies = port1;
    const init: WorkerInit = { endpoints, prefix: o.prefix ?? DEFAULT_ETCD_PREFIX, flag: shared, replies: port2, timeoutMs: this.timeoutMs, lockTtl: LOCK_TTL };
    const script = bundledOr(path.join(__dirname, 'etcd-worker.js'), 'etcd-worker');
    if (!fs.existsSync(script)) throw new Error(`cannot use etcd at ${endpoint}: ${script} is missing (run make build)`);
    this.worker = new Worker(script, { workerData: init, transferList: [port2] });
    this.worker.unref();
    this.worker.on('message', () => {
      if (this.closed) return;
      try {
        this.drain(); // another server's writes
      } catch {
        // etcd is away: the next write or notice drains them
      }
    });
    try {
      const snap = this.call({ op: 'open' }) as Snapshot;
      for (const kv of snap.items) this.cache.set(kv.key, kv);
      this.oldest = this.cacheRevision = snap.revision;
      if (o.owner !== undefined) this.call({ op: 'claim', holder: o.owner }, (LOCK_TTL + 5) * 1000);
    } catch (e) {
      this.close();
      throw new Error(`cannot use etcd at ${endpoint}: ${(e as Error).message}`);
    }
  }

  /** Sends one request and sleeps until the worker answers. */
  private call(req: Request, wait = 3 * this.timeoutMs): unknown {
    if (this.closed) throw new Error(`etcd store at ${this.endpoint} is closed`);
    Atomics.store(this.flag, 0, 0);
    this.worker.postMessage(req); // the worker's own deadlines come first
    const deadline = Date.now() + wait;
    for (;;) {
      const m = receiveMessageOnPort(this.replies);
      if (m) {
        const r = m.message as Reply;
        if (r.snapshot) this.resync(r.snapshot, r.events);
        else if (r.events.length > 0) this.dispatch(r.events);
        if (!r.ok) throw r.code ? new StoreError(r.code, r.key, r.message) : new Error(`etcd ${req.op === 'open' ? 'connect' : req.op}${r.key ? ' ' + r.key : ''}: ${r.message}`);
        return r.result;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`etcd at ${this.endpoint} did not answer ${req.op} within ${wait} ms`);
      Atomics.wait(this.flag, 0, 0, left);
    }
  }

  /** The revision the cache is current at: a watch from it misses nothing. */
  revision(): number {
    return this.cacheRevision;
  }

  get(key: string): Stored | null {
    return this.cache.get(key) ?? null;
  }

  list(prefix: string): ListResult {
    const items = [...this.cache.values()].filter((s) => s.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { items, revision: this.cacheRevision };
  }

  create(key: string, value: string): Stored {
    return this.written(this.call({ op: 'create', key, value }) as RawKv);
  }

  update(key: string, value: string, expected?: number): Stored {
    return this.written(this.call({ op: 'update', key, value, expected }) as RawKv);
  }

  delete(key: string, expected?: number): Stored {
    return this.written(this.call({ op: 'delete', key, expected }) as RawKv, true);
  }

  /** Our write is in the cache when it returns, even if its watch event comes later (the event then changes nothing). */
  private written(s: Stored, deleted = false): Stored {
    const had = this.cache.get(s.key);
    if (!had || had.revision <= s.revision) {
      if (deleted) this.cache.delete(s.key);
      else this.cache.set(s.key, s);
    }
    this.cacheRevision = Math.max(this.cacheRevision, s.revision);
    return this.compactNow(s);
  }

  /** Every 1000 writes, etcd's history older than KEEP revisions goes (as SQLite's log; etcd 3.4 never compacts unless told). */
  private compactNow(s: Stored): Stored {
    if (++this.writes % Math.max(1, Math.floor(this.keep / 10)) === 0 && s.revision > this.keep) this.notice({ compact: s.revision - this.keep });
    return s;
  }

  watch(prefix: string, after: number, onEvent: (e: WatchEvent) => void): Cancel {
    this.drain();
    if (after < this.oldest) throw new StoreError('Gone', prefix, `revision ${after} is older than the events this server keeps (from ${this.oldest + 1})`);
    const w: Watcher = { prefix, after, onEvent };
    const past = this.window.filter((e) => e.revision > after && e.key.startsWith(prefix));
    this.watchers.add(w);
    for (const e of past) onEvent(e);
    // replayed up to the window's end: later events come through dispatch
    w.after = Math.max(after, this.window.at(-1)?.revision ?? after);
    return () => this.watchers.delete(w);
  }

  private drain(): void {
    this.call({ op: 'drain' });
  }

  /**
   * The watch started again from `snap`: events before it apply as usual; then the cache becomes the
   * snapshot, and each difference is an event (ADDED, MODIFIED, DELETED); then the events after it.
   * An entry newer than the snapshot (our own write, or an event already taken) stays.
   */
  private resync(snap: Snapshot, events: WatchEvent[]): void {
    this.dispatch(events.filter((e) => e.revision <= snap.revision));
    const diff: WatchEvent[] = [];
    const inSnap = new Map(snap.items.map((kv) => [kv.key, kv]));
    for (const kv of snap.items) {
      const had = this.cache.get(kv.key);
      if (!had || had.revision < kv.revision) diff.push({ type: had ? 'MODIFIED' : 'ADDED', key: kv.key, value: kv.value, revision: kv.revision });
    }
    for (const [key, had] of this.cache) {
      if (!inSnap.has(key) && had.revision <= snap.revision) diff.push({ type: 'DELETED', key, value: had.value, revision: snap.revision });
    }
    diff.sort((a, b) => a.revision - b.revision);
    for (const kv of snap.items) if ((this.cache.get(kv.key)?.revision ?? 0) <= kv.revision) this.cache.set(kv.key, kv);
    this.dispatch(diff);
    this.cacheRevision = Math.max(this.cacheRevision, snap.revision);
    this.dispatch(events.filter((e) => e.revision > snap.revision));
  }

  /** Keeps the events in the cache and the window, and gives them to the watchers, in order, once each. */
  private dispatch(events: WatchEvent[]): void {
    for (const e of events) {
      const had = this.cache.get(e.key);
      if (!had || had.revision <= e.revision) {
        if (e.type === 'DELETED') this.cache.delete(e.key);
        else this.cache.set(e.key, { key: e.key, value: e.value, revision: e.revision, createRevision: e.type === 'ADDED' ? e.revision : had?.createRevision ?? e.revision });
      }
      this.cacheRevision = Math.max(this.cacheRevision, e.revision);
    }
    for (const e of events) this.window.push(e);
    const over = this.window.length - this.keep;
    if (over > 0) this.oldest = (this.window.splice(0, over).at(-1) as WatchEvent).revision;
    this.queue.push(...events);
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      for (let e = this.queue.shift(); e; e = this.queue.shift()) {
        for (const w of [...this.watchers]) {
          if (e.revision > w.after && e.key.startsWith(w.prefix) && this.watchers.has(w)) w.onEvent(e);
        }
      }
    } finally {
      this.dispatching = false;
    }
  }

  private notice(n: Notice): void {
    this.worker.postMessage(n);
  }

  /** Gives the prefix up (the next server need not wait) and ends the worker. */
  close(): void {
    if (this.closed) return;
    this.watchers.clear();
    try {
      this.call({ op: 'close' }, this.timeoutMs);
    } catch {
      // etcd is away: a claim ends with its lease
    }
    this.closed = true;
    this.replies.close();
    void this.worker.terminate();
  }
}
