// Single-use tokens for the streaming URLs (kubelet's request_cache.go): the
// CRI Exec/Attach/PortForward call stores its request and returns a URL
// carrying a random token; the client's HTTP request consumes it. A token
// lives one minute; at most 1000 are outstanding.

import { randomBytes } from 'node:crypto';

export interface RequestCacheOptions {
  ttlMs?: number;
  maxInFlight?: number;
  /** The clock, for tests. */
  now?: () => number;
}

export class RequestCache<T> {
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly now: () => number;
  /** Insertion order is age order: the oldest entries come first. */
  private readonly entries = new Map<string, { req: T; expires: number }>();

  constructor(opts: RequestCacheOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.max = opts.maxInFlight ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  /** Stores req; returns its token (16 URL-safe characters, 96 random bits). */
  insert(req: T): string {
    this.gc();
    if (this.entries.size >= this.max) {
      throw Object.assign(new Error(`maximum number of in-flight streaming requests (${this.max}) exceeded`), { code: 'EAGAIN' });
    }
    for (;;) {
      const token = randomBytes(12).toString('base64url');
      if (this.entries.has(token)) continue;
      this.entries.set(token, { req, expires: this.now() + this.ttlMs });
      return token;
    }
  }

  /** Removes the token and returns its request, or undefined when unknown or expired. */
  consume(token: string): T | undefined {
    const e = this.entries.get(token);
    if (!e) return undefined;
    this.entries.delete(token);
    return this.now() > e.expires ? undefined : e.req;
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }

  private gc(): void {
    const now = this.now();
    for (const [token, e] of this.entries) {
      if (now <= e.expires) return;
      this.entries.delete(token);
    }
  }
}
