// The etcd half of EtcdStore (etcd.ts), in a worker thread: the Store is
// synchronous (the API handlers and controllers call it inline, as
// better-sqlite3 lets them), gRPC is not, so the main thread posts a
// request here and sleeps on a shared flag until the answer is on its port.
// This side speaks etcd v3 through the etcd3 client (grpc-js) and follows
// one watch on the whole prefix from the revision the store opened at; a
// write's answer waits until that watch has seen the write, and carries
// every event seen so far, so the writer's own watchers run before the
// write returns, as with SQLite.

import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { Etcd3, IKeyValue, IWatchResponse, ICompare, IRequestOp, Lease, Watcher } from 'etcd3';
import type { StoreErrorCode, WatchEvent } from './types';

export interface WorkerInit {
  endpoints: string[];
  /** Every key the store writes is this plus the Store's key. */
  prefix: string;
  /** Int32 flag the main thread waits on; set to 1 with each answer. */
  flag: SharedArrayBuffer;
  /** Answers go here; the main thread reads them with receiveMessageOnPort. */
  replies: MessagePort;
  /** Deadline of one etcd call. */
  timeoutMs: number;
  /** The lease of a claim, in seconds: how long a server that died keeps the prefix. */
  lockTtl: number;
}

export type Request =
  | { op: 'open' }
  | { op: 'claim'; holder: string }
  | { op: 'close' }
  | { op: 'create'; key: string; value: string }
  | { op: 'update'; key: string; value: string; expected?: number | undefined }
  | { op: 'delete'; key: string; expected?: number | undefined }
  | { op: 'drain' };

/** Posted without waiting for an answer. */
export type Notice = { compact: number };

/** The Store key, under a lease, that says which server uses the prefix (hidden from list and watch). */
const LOCK = '/.server';

/** A key's value with its revisions (the value's placeholder already filled). */
export interface RawKv {
  key: string;
  value: string;
  revision: number;
  createRevision: number;
}

/** The prefix as listed at one revision: what the main thread's cache is (re)built from. */
export interface Snapshot {
  items: RawKv[];
  revision: number;
}

export type Reply =
  | { ok: true; result: unknown; events: WatchEvent[]; snapshot?: Snapshot | undefined }
  | { ok: false; code: StoreErrorCode | null; key: string; message: string; events: WatchEvent[]; snapshot?: Snapshot | undefined };

const REVISION = '"__revision__"'; // types.ts's, not imported: this bundle stays small

const init = workerData as WorkerInit;
const flag = new Int32Array(init.flag);
/** Made by the first request, so that a missing module is an answer, not a dead worker. */
let etcd: Etcd3 | null = null;
function connect(): Etcd3 {
  if (etcd) return etcd;
  const { Etcd3: Client } = require('etcd3') as typeof import('etcd3');
  etcd = new Client({
    hosts: init.endpoints,
    dialTimeout: init.timeoutMs,
    defaultCallOptions: (c) => (c.isStream ? {} : { deadline: Date.now() + init.timeoutMs }),
  });
  return etcd;
}

/** Events the watch delivered that the main thread has not taken yet. */
let pending: WatchEvent[] = [];
/** The highest revision the watch has delivered. */
let seen = 0;
let waiters: { revision: number; done: () => void }[] = [];
let watcher: Watcher | null = null;
let lease: Lease | null = null;

class Failure extends Error {
  constructor(readonly code: StoreErrorCode, readonly key: string, message: string) {
    super(message);
  }
}

const enc = (s: string): Buffer => Buffer.from(s, 'utf8');

/** The first key after every key that starts with `p` (etcd's prefix range end). */
function rangeEnd(p: string): Buffer {
  const b = Buffer.from(p, 'utf8');
  for (let i = b.length - 1; i >= 0; i--) {
    if ((b[i] as number) < 0xff) {
      const end = b.subarray(0, i + 1);
      end[i] = (end[i] as number) + 1;
      return end;
    }
  }
  return Buffer.from([0]); // all keys
}

/** The first key with prefix `p` (etcd's "\0" for all keys: an empty key is not one). */
function rangeStart(p: string): Buffer {
  return p === '' ? Buffer.from([0]) : enc(p);
}

/** The resourceVersion of a value is the revision that wrote it: filled on read, never stored. */
function fill(value: string, revision: number | string): string {
  return value.split(REVISION).join(`"${revision}"`);
}

function raw(kv: IKeyValue): RawKv {
  const value = fill(kv.value.toString('utf8'), kv.mod_revision);
  return { key: kv.key.toString('utf8').slice(init.prefix.length), value, revision: Number(kv.mod_revision), createRevision: Number(kv.create_revision) };
}

function onWatch(res: IWatchResponse): void {
  for (const e of res.events) {
    const key = e.kv.key.toString('utf8').slice(init.prefix.length);
    const revision = Number(e.kv.mod_revision);
    seen = Math.max(seen, revision);
    if (key === LOCK) continue;
    if (e.type === 'Delete') {
      // as SQLite: the last value, with the revision that wrote it
      const value = e.prev_kv ? fill(e.prev_kv.value.toString('utf8'), e.prev_kv.mod_revision) : '{}';
      pending.push({ type: 'DELETED', key, value, revision });
    } else {
      pending.push({ type: e.kv.version === '1' ? 'ADDED' : 'MODIFIED', key, value: fill(e.kv.value.toString('utf8'), revision), revision });
    }
  }
  const ready = waiters.filter((w) => w.revision <= seen);
  waiters = waiters.filter((w) => w.revision > seen);
  for (const w of ready) w.done();
  if (pending.length > 0 && ready.length === 0) parentPort?.postMessage('events'); // another writer's: the main thread drains when idle
}

/** Resolves once the watch has delivered `revision`. */
function reached(revision: number): Promise<void> {
  if (seen >= revision) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const w = { revision, done: () => { clearTimeout(timer); resolve(); } };
    const timer = setTimeout(() => {
      waiters = waiters.filter((x) => x !== w); // its events then come as another writer's
      reject(new Error(`the watch did not deliver revision ${revision} within ${init.timeoutMs} ms`));
    }, init.timeoutMs);
    waiters.push(w);
  });
}

function take(): WatchEvent[] {
  const out = pending;
  pending = [];
  return out;
}

/** Set when the watch had to start again: the main thread rebuilds its cache from it. */
let resynced: Snapshot | null = null;
function takeSnapshot(): Snapshot | undefined {
  const out = resynced ?? undefined;
  resynced = null;
  return out;
}

/** The whole prefix at one revision (one range: etcd answers it at one revision, in key order). */
async function snapshot(): Promise<Snapshot> {
  const r = await connect().kv.range({ key: rangeStart(init.prefix), range_end: rangeEnd(init.prefix) });
  return { items: r.kvs.map(raw).filter((kv) => kv.key !== LOCK), revision: Number(r.header.revision) };
}

/**
 * Follows the prefix from `after`. A watch etcd cancels (its revision compacted while we were away)
 * starts again from a fresh snapshot, which the main thread compares with its cache: what changed in
 * the gap reaches the watchers as events, as a client-go reflector's relist does.
 */
async function follow(after: number): Promise<void> {
  seen = after;
  const w = await connect().watch().inRange({ start: rangeStart(init.prefix), end: rangeEnd(init.prefix) }).withPreviousKV().startRevision(String(after + 1)).create();
  w.on('data', onWatch);
  w.on('error', restart);
  watcher = w;
}

/** A new snapshot, then the watch from it; tried again each second while etcd is away. */
function restart(): void {
  const again = async (): Promise<void> => {
    const snap = await snapshot();
    resynced = snap;
    await follow(snap.revision);
    parentPort?.postMessage('events');
  };
  void again().catch(() => setTimeout(restart, 1000).unref());
}

/**
 * Takes the prefix for this server: LOCK, put with a lease kept alive from
 * here, if no one has it. A holder that stopped revoked its lease; one that
 * died loses it when the lease runs out, so that long is waited for.
 */
async function claim(holder: string): Promise<void> {
  const key = enc(init.prefix + LOCK);
  const deadline = Date.now() + init.lockTtl * 1000 + 1000;
  for (;;) {
    const l = connect().lease(init.lockTtl);
    const id = await l.grant();
    const r = await connect().kv.txn({ compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }], success: [{ request_put: { key, value: enc(holder), lease: id } }], failure: [{ request_range: { key } }] });
    if (r.succeeded) {
      lease = l;
      l.on('lost', () => void claim(holder).catch(() => undefined)); // etcd was away longer than the lease: take it again
      return;
    }
    await l.revoke().catch(() => undefined);
    const other = r.responses[0]?.response_range?.kvs[0]?.value.toString('utf8') ?? 'another server';
    if (Date.now() > deadline) throw new Error(`${init.prefix || 'the keyspace'} on this etcd is in use by ${other}: one server at a time (a stopped one gives it up at once, a dead one after ${init.lockTtl} s)`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function write(req: Extract<Request, { op: 'create' | 'update' | 'delete' }>): Promise<RawKv> {
  const key = enc(init.prefix + req.key);
  let cmp: ICompare;
  if (req.op === 'create') cmp = { key, target: 'Create', result: 'Equal', create_revision: 0 };
  else if (req.expected !== undefined) cmp = { key, target: 'Mod', result: 'Equal', mod_revision: req.expected };
  else cmp = { key, target: 'Create', result: 'Greater', create_revision: 0 };
  const op: IRequestOp = req.op === 'delete' ? { request_delete_range: { key, prev_kv: true } } : { request_put: { key, value: enc(req.value), prev_kv: true } };
  const r = await connect().kv.txn({ compare: [cmp], success: [op], failure: [{ request_range: { key } }] });
  if (!r.succeeded) {
    // the main thread's cache is behind whatever won: let the watch catch up first, its events go with the failure
    await reached(Number(r.header.revision)).catch(() => undefined);
    const cur = r.responses[0]?.response_range?.kvs[0];
    if (req.op === 'create') throw new Failure('AlreadyExists', req.key, `${req.key} already exists`);
    if (!cur) throw new Failure('NotFound', req.key, `${req.key} not found`);
    throw new Failure('Conflict', req.key, `${req.key} was modified (resourceVersion ${cur.mod_revision}, not ${String(req.expected)})`);
  }
  const revision = Number(r.header.revision);
  const res = r.responses[0];
  if (req.op === 'delete') {
    const prev = res?.response_delete_range?.prev_kvs[0];
    if (!prev) throw new Failure('NotFound', req.key, `${req.key} not found`);
    return { key: req.key, value: raw(prev).value, revision, createRevision: Number(prev.create_revision) };
  }
  const prev = res?.response_put?.prev_kv;
  return { key: req.key, value: fill(req.value, revision), revision, createRevision: prev && prev.create_revision !== '0' ? Number(prev.create_revision) : revision };
}

async function handle(req: Request): Promise<{ result: unknown; events: WatchEvent[]; snapshot?: Snapshot | undefined }> {
  switch (req.op) {
    case 'open': {
      const snap = await snapshot();
      await follow(snap.revision);
      return { result: snap, events: [] };
    }
    case 'create':
    case 'update':
    case 'delete': {
      const out = await write(req);
      // written either way: a watch slower than the deadline hands its events over later, as another server's
      await reached(out.revision).catch(() => undefined);
      return { result: out, events: take() };
    }
    case 'drain':
      return { result: null, events: take(), snapshot: takeSnapshot() };
    case 'claim':
      await claim(req.holder);
      return { result: null, events: [] };
    case 'close':
      await lease?.revoke().catch(() => undefined); // the next server need not wait out the lease
      await watcher?.cancel().catch(() => undefined);
      etcd?.close();
      return { result: null, events: [] };
  }
}

/** An etcd client error as a person reads it. */
function reason(e: Error): string {
  // etcd3 holds calls back for 5 s after 3 failures in a row
  if (e.name === 'BrokenCircuitError') return `etcd at ${init.endpoints.join(',')} is not answering (calls are held back a few seconds after failures)`;
  return e.message.replace(/\s*Resolution note:.*$/s, ''); // grpc-js's tail says nothing here
}

function answer(reply: Reply): void {
  init.replies.postMessage(reply);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

// One request at a time: the main thread waits for each answer.
parentPort?.on('message', (req: Request | Notice) => {
  if ('compact' in req) {
    // history before it goes (etcd frees the space in the background); a failure (another server compacted further) changes nothing
    connect().kv.compact({ revision: req.compact }).catch(() => undefined);
    return;
  }
  handle(req).then(
    ({ result, events, snapshot: snap }: { result: unknown; events: WatchEvent[]; snapshot?: Snapshot | undefined }) => answer({ ok: true, result, events, snapshot: snap }),
    (e: unknown) => answer(e instanceof Failure ? { ok: false, code: e.code, key: e.key, message: e.message, events: take() } : { ok: false, code: null, key: 'key' in req ? req.key : '', message: reason(e as Error), events: [] }),
  );
});
