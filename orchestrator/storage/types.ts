// The orchestrator's storage: Kubernetes objects by key, each write a new
// revision of one global counter (etcd's, and kine's over SQL). The API
// server gives the revision out as resourceVersion; update and delete
// compare on it, so two writers never both win; watch replays the writes
// after a revision, then follows new ones. SQLite (sqlite.ts) and etcd
// (etcd.ts) implement it; test/helpers/store-suite.ts is the suite both
// pass.

/** A stored object: its JSON and the revision of its last write. */
export interface Stored {
  key: string;
  value: string;
  /** The revision that wrote this value (resourceVersion). */
  revision: number;
  /** The revision that created the key (metadata.creationTimestamp's order). */
  createRevision: number;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchEvent {
  type: WatchEventType;
  key: string;
  /** The value written; for DELETED, the last value before the delete. */
  value: string;
  revision: number;
}

export interface ListResult {
  items: Stored[];
  /** The store's revision when the list was read: a watch from it misses nothing. */
  revision: number;
}

/** Stops a watch. */
export type Cancel = () => void;

export interface Store {
  get(key: string): Stored | null;
  /** Keys starting with `prefix`, in key order. */
  list(prefix: string): ListResult;
  /** Fails with AlreadyExists if the key is there. `value` may hold the revision as a placeholder (see REVISION). */
  create(key: string, value: string): Stored;
  /** Fails with NotFound, or Conflict when `expected` is given and is not the current revision. */
  update(key: string, value: string, expected?: number): Stored;
  /** Returns the last value; NotFound, or Conflict as update. */
  delete(key: string, expected?: number): Stored;
  /**
   * Events for keys under `prefix` with a revision above `after`, in order:
   * first those already written (Gone if compacted away), then new ones as
   * they happen.
   */
  watch(prefix: string, after: number, onEvent: (e: WatchEvent) => void): Cancel;
  /** The current revision. */
  revision(): number;
  close(): void;
}

/**
 * Written in a value, replaced by the revision of the write itself: an
 * object's resourceVersion comes back in its own JSON. SQLite replaces it
 * as it writes; etcd knows the revision only after the write, so it keeps
 * the placeholder and fills in the key's mod revision on every read.
 */
export const REVISION = '"__revision__"';

export type StoreErrorCode = 'NotFound' | 'AlreadyExists' | 'Conflict' | 'Gone';

/** A storage failure the API server turns into 404, 409 or 410. */
export class StoreError extends Error {
  constructor(readonly code: StoreErrorCode, readonly key: string, message: string) {
    super(message);
    this.name = 'StoreError';
  }
}
