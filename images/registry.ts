// A registry client for the OCI distribution API over Node's fetch.
//
// Requests go through `send`, which adds the Authorization the registry asked
// for last time, and on a 401 answers the WWW-Authenticate challenge once:
//   Bearer → GET <realm>?service=…&scope=repository:<name>:<actions>, with
//            basic credentials if we have some, and cache the token per scope;
//   Basic  → send the credentials.
// GETs are retried on network errors, 429 and 5xx with exponential backoff.
// Blob downloads resume with `Range: bytes=<offset>-` after a dropped
// connection, so what was already written (and hashed) is kept.
//
// HTTP is used for localhost, 127.0.0.0/8, ::1 and hosts listed as insecure
// (or a pull source marked insecure); HTTPS otherwise.
//
// Pulls (manifests, blobs, tags) go through a list of pull sources per
// reference: endpoint + repository pairs, tried in order until one answers.
// By default that is the per-registry `mirrors`, then the registry itself;
// `pullSources` replaces it (registries.conf: images/registries.ts maps
// registry.k8s.io/pause to mirror 127.0.0.1:5000/pause, then the registry).
// A source that fails with a registry error (HTTP, network, auth) passes the
// request to the next; when all fail, the error names each. Whatever source
// answers, the caller checks digests as usual (pull.ts). Pushes go to the
// registry itself.
//
// Credentials are looked up per endpoint host. A registry token is sent as
// `Bearer` from the first request; an identity token is traded at the
// Bearer realm (POST, grant_type=refresh_token) as docker does.

import { Readable } from 'node:stream';
import { RuntimeError, messageOf } from '../runtime/sys/errors';
import { basicHeader, fileCredentials, hasBasic, parseChallenges, type CredentialLookup, type Credentials } from './auth';
import { MANIFEST_ACCEPT, type Descriptor } from './manifest';
import { DOCKER_HUB_ENDPOINT, manifestRefOf, type Reference } from './reference';

/** One place to pull a reference from: an endpoint and the repository there. */
export interface PullSource {
  /** `host[:port]`; docker.io is reached at registry-1.docker.io. */
  readonly host: string;
  /** The repository at that host: `k8s/pause`. */
  readonly path: string;
  /** Plain HTTP (registries.conf's `insecure`). */
  readonly insecure?: boolean | undefined;
  /** A mirror rather than the registry itself (for messages). */
  readonly mirror?: boolean | undefined;
}

export interface RegistryOptions {
  /** Hosts (`host` or `host:port`) reached over plain HTTP. */
  insecure?: readonly string[] | undefined;
  /** Per registry, hosts to try first for pulls: `{"docker.io": ["mirror:5000"]}`. */
  mirrors?: Readonly<Record<string, readonly string[]>> | undefined;
  /**
   * Where a reference is pulled from, in order (replaces `mirrors`). May throw
   * (a blocked registry).
   */
  pullSources?: ((ref: Reference) => readonly PullSource[]) | undefined;
  credentials?: CredentialLookup | undefined;
  /** Attempts per request before giving up (network errors, 429, 5xx). */
  retries?: number | undefined;
  /** First backoff delay; doubled each retry. */
  retryDelayMs?: number | undefined;
  userAgent?: string | undefined;
}

export interface BlobSink {
  /** Bytes already held; a download starts (or resumes) there. */
  readonly offset: number;
  write(chunk: Uint8Array): void | Promise<void>;
  /** The server sent the whole blob again: drop what was written. */
  reset(): void | Promise<void>;
}

export interface FetchedManifest {
  body: Buffer;
  mediaType: string;
  /** From Docker-Content-Digest, else computed by the caller. */
  digest?: string | undefined;
  /** The source that answered: `127.0.0.1:5000/pause`. */
  source?: string | undefined;
  /** Whether that source is a mirror. */
  mirror?: boolean | undefined;
}

export class RegistryError extends RuntimeError {
  constructor(message: string, readonly status: number, code: string) {
    super(message, { code });
    this.name = 'RegistryError';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

interface Endpoint {
  /** host[:port] as used in URLs and credential lookups. */
  host: string;
  base: string;
}

/** Statuses worth retrying. */
const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);

export class RegistryClient {
  private readonly tokens = new Map<string, string>();
  /** Per host: the challenge answer that worked, reused before any 401. */
  private readonly basicHosts = new Set<string>();
  private readonly creds: CredentialLookup;
  private readonly retries: number;
  private readonly retryDelayMs: number;

  constructor(private readonly opts: RegistryOptions = {}) {
    this.creds = opts.credentials ?? fileCredentials();
    this.retries = opts.retries ?? 5;
    this.retryDelayMs = opts.retryDelayMs ?? 250;
  }

  endpoint(host: string, insecure = false): Endpoint {
    const apiHost = host === 'docker.io' ? DOCKER_HUB_ENDPOINT : host;
    const http = insecure || isLoopback(apiHost) || (this.opts.insecure ?? []).includes(host) || (this.opts.insecure ?? []).includes(apiHost);
    return { host, base: `${http ? 'http' : 'https'}://${apiHost}` };
  }

  /** Where to pull `ref` from, in order: the given sources, else mirrors first, then the registry. */
  pullSources(ref: Reference): PullSource[] {
    if (this.opts.pullSources) {
      const list = [...this.opts.pullSources(ref)];
      if (list.length === 0) throw new RegistryError(`no pull source for ${ref.domain}/${ref.path}`, 0, 'ENOTFOUND');
      return list;
    }
    return [...(this.opts.mirrors?.[ref.domain] ?? []).map((m) => ({ host: m, path: ref.path, mirror: true })), { host: ref.domain, path: ref.path }];
  }

  /**
   * Runs `fn` against each pull source until one succeeds. Only registry
   * errors (HTTP, network, auth) pass on to the next source; when every
   * source failed, the error names each (mirrors marked), with the last one's
   * code (ENOTFOUND only if every source said 404).
   */
  private async withSources<T>(ref: Reference, fn: (ep: Endpoint, repo: string, src: PullSource) => Promise<T>): Promise<T> {
    const sources = this.pullSources(ref);
    const errors: { src: PullSource; e: RegistryError }[] = [];
    for (const src of sources) {
      try {
        return await fn(this.endpoint(src.host, src.insecure === true), src.path, src);
      } catch (e) {
        if (!(e instanceof RegistryError) || e.code === 'EDIGEST') throw e;
        errors.push({ src, e });
      }
    }
    if (errors.length === 1) throw errors[0]!.e;
    const last = errors[errors.length - 1]!.e;
    const code = errors.every((x) => x.e.code === 'ENOTFOUND') ? 'ENOTFOUND' : last.code;
    throw new RegistryError(errors.map((x) => `${x.src.mirror ? 'mirror: ' : ''}${x.e.message}`).join('; '), last.status, code);
  }

  private credsFor(host: string): Credentials | undefined {
    return this.creds(host);
  }

  private authHeader(ep: Endpoint, scope: string): string | undefined {
    const c = this.credsFor(ep.host);
    if (c?.registryToken) return `Bearer ${c.registryToken}`;
    const t = this.tokens.get(`${ep.host} ${scope}`);
    if (t) return `Bearer ${t}`;
    if (this.basicHosts.has(ep.host) && hasBasic(c)) return basicHeader(c);
    return undefined;
  }

  /** Answers a 401's challenge; false when there is nothing we can answer with. */
  private async authenticate(ep: Endpoint, scope: string, res: Response): Promise<boolean> {
    const challenges = parseChallenges(res.headers.get('www-authenticate') ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const creds = this.credsFor(ep.host);
    if (creds?.registryToken) return false; // it was sent and refused
    if (bearer && bearer.params['realm']) {
      const url = new URL(bearer.params['realm']);
      const headers: Record<string, string> = {};
      if (this.opts.userAgent) headers['user-agent'] = this.opts.userAgent;
      const init: RequestInit = { headers };
      if (creds?.identityToken) {
        // OAuth2: trade the refresh token for an access token.
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: this.opts.userAgent ?? 'mycontainer', scope });
        if (bearer.params['service']) form.set('service', bearer.params['service']);
        headers['content-type'] = 'application/x-www-form-urlencoded';
        init.method = 'POST';
        init.body = form.toString();
      } else {
        if (bearer.params['service']) url.searchParams.set('service', bearer.params['service']);
        url.searchParams.set('scope', scope);
        if (hasBasic(creds)) headers['authorization'] = basicHeader(creds);
      }
      let tres: Response;
      try {
        tres = await fetch(url, init);
      } catch (e) {
        throw new RegistryError(`cannot get a token from ${url.origin}${url.pathname}: ${messageOf(e)}`, 0, 'EAUTH');
      }
      if (!tres.ok) {
        await tres.body?.cancel();
        throw new RegistryError(`cannot get a token from ${url.origin}${url.pathname}: HTTP ${tres.status}${creds ? '' : ' (no credentials for ' + ep.host + ')'}`, tres.status, 'EAUTH');
      }
      const doc = (await tres.json()) as { token?: string; access_token?: string };
      const token = doc.token ?? doc.access_token;
      if (!token) throw new RegistryError(`token server ${url.origin} answered without a token`, tres.status, 'EAUTH');
      this.tokens.set(`${ep.host} ${scope}`, token);
      return true;
    }
    if (challenges.some((c) => c.scheme === 'basic') && hasBasic(creds)) {
      if (this.basicHosts.has(ep.host)) return false; // already sent them: wrong credentials
      this.basicHosts.add(ep.host);
      return true;
    }
    return false;
  }

  /**
   * One request with auth and retries. `path` is below /v2/<repo>/ unless it
   * starts with a scheme (an upload Location).
   */
  private async send(
    ep: Endpoint,
    repo: string,
    actions: string,
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: () => Buffer | ReadableStream<Uint8Array>,
  ): Promise<Response> {
    const scope = `repository:${repo}:${actions}`;
    const url = /^https?:/.test(path) ? path : path.startsWith('/') ? `${ep.base}${path}` : `${ep.base}/v2/${repo}/${path}`;
    let authTried = false;
    for (let attempt = 1; ; attempt++) {
      const h: Record<string, string> = { ...headers };
      const auth = this.authHeader(ep, scope);
      if (auth) h['authorization'] = auth;
      if (this.opts.userAgent) h['user-agent'] = this.opts.userAgent;
      let res: Response;
      try {
        const init: RequestInit & { duplex?: 'half' } = { method, headers: h, redirect: 'follow' };
        if (body) {
          const b = body();
          init.body = b;
          if (b instanceof ReadableStream) init.duplex = 'half';
        }
        res = await fetch(url, init);
      } catch (e) {
        if (attempt < this.retries && !body) {
          await sleep(this.retryDelayMs * 2 ** (attempt - 1));
          continue;
        }
        throw new RegistryError(`${method} ${url}: ${messageOf(e)}${causeOf(e)}`, 0, 'ENETWORK');
      }
      if (res.status === 401) {
        await res.body?.cancel();
        if (!authTried && (await this.authenticate(ep, scope, res))) {
          authTried = true;
          attempt--;
          continue;
        }
        throw new RegistryError(`${method} ${url}: unauthorized${this.credsFor(ep.host) ? ' (credentials rejected)' : ' (no credentials for ' + ep.host + ')'}`, 401, 'EAUTH');
      }
      if (RETRY_STATUS.has(res.status) && attempt < this.retries && (!body || method === 'GET')) {
        await res.body?.cancel();
        const after = Number(res.headers.get('retry-after'));
        await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 10_000) : this.retryDelayMs * 2 ** (attempt - 1));
        continue;
      }
      return res;
    }
  }

  private async fail(res: Response, what: string): Promise<never> {
    let detail = '';
    try {
      const doc = (await res.json()) as { errors?: { code?: string; message?: string }[] };
      detail = (doc.errors ?? []).map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim()).join('; ');
    } catch {
      // body not JSON
    }
    const code = res.status === 404 ? 'ENOTFOUND' : res.status === 401 || res.status === 403 ? 'EAUTH' : 'EREGISTRY';
    throw new RegistryError(`${what}: HTTP ${res.status}${detail ? ` (${detail})` : ''}`, res.status, code);
  }

  /** GET a manifest (or index) by tag or digest. */
  async getManifest(ref: Reference, reference = manifestRefOf(ref)): Promise<FetchedManifest> {
    return this.withSources(ref, async (ep, repo, src) => {
      const res = await this.send(ep, repo, 'pull', 'GET', `manifests/${reference}`, { accept: MANIFEST_ACCEPT.join(', ') });
      if (!res.ok) return this.fail(res, `cannot get manifest ${src.host}/${repo}${reference.includes(':') ? '@' : ':'}${reference}`);
      const body = Buffer.from(await res.arrayBuffer());
      return {
        body,
        mediaType: (res.headers.get('content-type') ?? '').split(';')[0]!.trim(),
        digest: res.headers.get('docker-content-digest') ?? undefined,
        source: `${src.host}/${repo}`,
        mirror: src.mirror === true,
      };
    });
  }

  /** GET a small blob (a config) into memory. */
  async getBlob(ref: Reference, desc: Descriptor): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    await this.downloadBlob(ref, desc, {
      get offset() {
        return size;
      },
      write(c) {
        chunks.push(Buffer.from(c));
        size += c.length;
      },
      reset() {
        chunks.length = 0;
        size = 0;
      },
    });
    return Buffer.concat(chunks);
  }

  /**
   * Streams a blob into `sink`, resuming with Range from `sink.offset` after a
   * dropped connection. The caller verifies the digest (the sink hashes).
   */
  async downloadBlob(ref: Reference, desc: Descriptor, sink: BlobSink): Promise<void> {
    return this.withSources(ref, async (ep, repo) => {
      let failures = 0;
      for (;;) {
        if (sink.offset === desc.size && desc.size > 0) return;
        const start = sink.offset;
        const headers: Record<string, string> = {};
        if (start > 0) headers['range'] = `bytes=${start}-`;
        const res = await this.send(ep, repo, 'pull', 'GET', `blobs/${desc.digest}`, headers);
        if (res.status === 416 && start > 0) {
          // We may hold everything already; otherwise start over.
          await res.body?.cancel();
          await sink.reset();
          continue;
        }
        if (!res.ok) return this.fail(res, `cannot get blob ${desc.digest} from ${ep.host}/${repo}`);
        if (start > 0) {
          const cr = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
          if (res.status !== 206 || !cr || Number(cr[1]) !== start) await sink.reset();
        }
        const before = sink.offset;
        try {
          if (res.body) {
            for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
              if (sink.offset + chunk.length > desc.size) {
                throw new RegistryError(`blob ${desc.digest} from ${ep.host} is longer than its descriptor's ${desc.size} bytes`, 0, 'EDIGEST');
              }
              try {
                await sink.write(chunk);
              } catch (e) {
                throw new SinkFailure(e);
              }
            }
          }
          if (sink.offset === desc.size) return;
          throw new Error(`connection closed after ${sink.offset} of ${desc.size} bytes`);
        } catch (e) {
          if (e instanceof SinkFailure) throw e.cause; // writing or unpacking failed: not the network
          if (e instanceof RegistryError && e.code === 'EDIGEST') throw e;
          failures = sink.offset > before ? 1 : failures + 1;
          if (failures >= this.retries) {
            throw new RegistryError(`cannot get blob ${desc.digest} from ${ep.host}/${repo}: ${messageOf(e)}${causeOf(e)} (after ${failures} attempts)`, 0, 'ENETWORK');
          }
          await sleep(this.retryDelayMs * 2 ** (failures - 1));
        }
      }
    });
  }

  /** HEAD a blob: is it already in the repository? */
  async hasBlob(ref: Reference, digest: string): Promise<boolean> {
    const ep = this.endpoint(ref.domain);
    const res = await this.send(ep, ref.path, 'pull,push', 'HEAD', `blobs/${digest}`);
    await res.body?.cancel();
    return res.ok;
  }

  /** Uploads a blob in one PUT (monolithic upload), unless it's there already. */
  async pushBlob(ref: Reference, desc: Descriptor, open: () => Readable): Promise<'exists' | 'pushed'> {
    if (await this.hasBlob(ref, desc.digest)) return 'exists';
    const ep = this.endpoint(ref.domain);
    const start = await this.send(ep, ref.path, 'pull,push', 'POST', 'blobs/uploads/');
    if (start.status !== 202) return this.fail(start, `cannot start upload of ${desc.digest} to ${ref.domain}/${ref.path}`);
    await start.body?.cancel();
    const loc = start.headers.get('location');
    if (!loc) throw new RegistryError(`upload of ${desc.digest}: no Location in the registry's answer`, 202, 'EREGISTRY');
    const url = new URL(loc, ep.base);
    url.searchParams.set('digest', desc.digest);
    const res = await this.send(ep, ref.path, 'pull,push', 'PUT', url.toString(), { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) }, () =>
      Readable.toWeb(open()) as unknown as ReadableStream<Uint8Array>,
    );
    if (res.status !== 201) return this.fail(res, `cannot upload ${desc.digest} to ${ref.domain}/${ref.path}`);
    await res.body?.cancel();
    return 'pushed';
  }

  async putManifest(ref: Reference, reference: string, mediaType: string, body: Buffer): Promise<string | undefined> {
    const ep = this.endpoint(ref.domain);
    const res = await this.send(ep, ref.path, 'pull,push', 'PUT', `manifests/${reference}`, { 'content-type': mediaType }, () => body);
    if (res.status !== 201) return this.fail(res, `cannot put manifest ${ref.domain}/${ref.path}:${reference}`);
    await res.body?.cancel();
    return res.headers.get('docker-content-digest') ?? undefined;
  }

  /** Tags in a repository. */
  async listTags(ref: Reference): Promise<string[]> {
    return this.withSources(ref, async (ep, repo, src) => {
      const res = await this.send(ep, repo, 'pull', 'GET', 'tags/list');
      if (!res.ok) return this.fail(res, `cannot list tags of ${src.host}/${repo}`);
      const doc = (await res.json()) as { tags?: string[] | null };
      return doc.tags ?? [];
    });
  }
}

class SinkFailure extends Error {
  constructor(override readonly cause: unknown) {
    super(messageOf(cause));
  }
}

function causeOf(e: unknown): string {
  const c = e instanceof Error ? (e as Error & { cause?: unknown }).cause : undefined;
  return c instanceof Error ? ` (${c.message})` : '';
}
