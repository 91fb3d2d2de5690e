// The Store on SQLite (better-sqlite3), kine's layout made smaller: `log`
// holds every write with its revision (the row id), `kv` the current value
// of each key. A write is one transaction over both, so a reader never sees
// one without the other. Watchers live in this process (one server owns the
// database); a watch from an old revision replays `log` first. The log is
// trimmed to its last COMPACT_KEEP entries; a watch from before that gets
// Gone (410), and kubectl lists again, as with etcd's compaction.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type Database from 'better-sqlite3';
import { REVISION, StoreError, type Cancel, type ListResult, type Store, type Stored, type WatchEvent, type WatchEventType } from './types';

const COMPACT_KEEP = 10000;

interface Row {
  key: string;
  value: string;
  rev: number;
  create_rev: number;
}

interface Watcher {
  prefix: string;
  onEvent: (e: WatchEvent) => void;
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly watchers = new Set<Watcher>();
  private writes = 0;

  /** Opens (or makes) the database at `file`; ":memory:" for a test. */
  constructor(file: string) {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const Sqlite = require('better-sqlite3') as typeof Database;
    this.db = new Sqlite(file);
    if (file !== ':memory:') fs.chmodSync(file, 0o600); // Secrets live here
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS log (rev INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, type TEXT NOT NULL, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, rev INTEGER NOT NULL, create_rev INTEGER NOT NULL, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      INSERT OR IGNORE INTO meta (name, value) VALUES ('compacted', 0);
    `);
  }

  revision(): number {
    const r = this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'log'").get() as { seq: number } | undefined;
    return r?.seq ?? 0;
  }

  get(key: string): Stored | null {
    const r = this.db.prepare('SELECT key, value, rev, create_rev FROM kv WHERE key = ?').get(key) as Row | undefined;
    return r ? stored(r) : null;
  }

  list(prefix: string): ListResult {
    const read = this.db.transaction(() => {
      const rows = this.db.prepare('SELECT key, value, rev, create_rev FROM kv WHERE key >= ? AND key < ? ORDER BY key').all(prefix, prefixEnd(prefix)) as Row[];
      return { items: rows.map(stored), revision: this.revision() };
    });
    return read();
  }

  create(key: string, value: string): Stored {
    return this.write(key, 'ADDED', value, (cur) => {
      if (cur) throw new StoreError('AlreadyExists', key, `${key} already exists`);
    });
  }

  update(key: string, value: string, expected?: number): Stored {
    return this.write(key, 'MODIFIED', value, (cur) => {
      if (!cur) throw new StoreError('NotFound', key, `${key} not found`);
      if (expected !== undefined && cur.rev !== expected) throw new StoreError('Conflict', key, `${key} was modified (resourceVersion ${cur.rev}, not ${expected})`);
    });
  }

  delete(key: string, expected?: number): Stored {
    return this.write(key, 'DELETED', null, (cur) => {
      if (!cur) throw new StoreError('NotFound', key, `${key} not found`);
      if (expected !== undefined && cur.rev !== expected) throw new StoreError('Conflict', key, `${key} was modified (resourceVersion ${cur.rev}, not ${expected})`);
    });
  }

  /** One write: the check, the log row, the kv row, in one transaction; then the watchers. */
  private write(key: string, type: WatchEventType, value: string | null, check: (cur: Row | undefined) => void): Stored {
    const tx = this.db.transaction((): { out: Stored; event: WatchEvent } => {
      const cur = this.db.prepare('SELECT key, value, rev, create_rev FROM kv WHERE key = ?').get(key) as Row | undefined;
      check(cur);
      const rev = this.revision() + 1;
      const text = value === null ? (cur as Row).value : value.split(REVISION).join(`"${rev}"`);
      const inserted = this.db.prepare('INSERT INTO log (key, type, value) VALUES (?, ?, ?)').run(key, type, text);
      const at = Number(inserted.lastInsertRowid);
      if (type === 'DELETED') this.db.prepare('DELETE FROM kv WHERE key = ?').run(key);
      else this.db.prepare('INSERT INTO kv (key, rev, create_rev, value) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET rev = excluded.rev, value = excluded.value').run(key, at, cur?.create_rev ?? at, text);
      return {
        out: { key, value: text, revision: at, createRevision: cur?.create_rev ?? at },
        event: { type, key, value: text, revision: at },
      };
    });
    const { out, event } = tx();
    if (++this.writes % 1000 === 0) this.compact();
    for (const w of this.watchers) if (key.startsWith(w.prefix)) w.onEvent(event);
    return out;
  }

  watch(prefix: string, after: number, onEvent: (e: WatchEvent) => void): Cancel {
    const compacted = (this.db.prepare("SELECT value FROM meta WHERE name = 'compacted'").get() as { value: number }).value;
    if (after < compacted) throw new StoreError('Gone', prefix, `revision ${after} is compacted (the oldest kept is ${compacted + 1})`);
    // Replay and subscribe with no write in between: better-sqlite3 is
    // synchronous, so nothing else runs until this function returns.
    const past = this.db.prepare('SELECT rev, key, type, value FROM log WHERE rev > ? AND key >= ? AND key < ? ORDER BY rev').all(after, prefix, prefixEnd(prefix)) as { rev: number; key: string; type: WatchEventType; value: string }[];
    const w: Watcher = { prefix, onEvent };
    this.watchers.add(w);
    for (const r of past) onEvent({ type: r.type, key: r.key, value: r.value, revision: r.rev });
    return () => this.watchers.delete(w);
  }

  /** Keeps the last COMPACT_KEEP log entries. */
  private compact(): void {
    const below = this.revision() - COMPACT_KEEP;
    if (below <= 0) return;
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM log WHERE rev <= ?').run(below);
      this.db.prepare("UPDATE meta SET value = ? WHERE name = 'compacted'").run(below);
    })();
  }

  close(): void {
    this.watchers.clear();
    this.db.close();
  }
}

function stored(r: Row): Stored {
  return { key: r.key, value: r.value, revision: r.rev, createRevision: r.create_rev };
}

/** The first string after every string that starts with `prefix`. */
function prefixEnd(prefix: string): string {
  return prefix + '\uffff';
}
