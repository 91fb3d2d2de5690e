// The API server: HTTPS only, and every request must carry a client
// certificate signed by the cluster's CA (pki.ts), as k3s's admin
// kubeconfig does; anything else gets 401 before its path is read. Then:
// health, version and discovery, or a resource path parsed into a Target
// for rest.ts. Bodies are JSON, or Kubernetes' protobuf for the kinds
// protobuf-schema.ts knows (kubectl 1.33's typed `create` commands), read
// into the same JSON; answers are JSON (every kubectl accepts it), a Table
// when asked (kubectl get), or a watch stream.

import * as https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Store } from '../storage/types';
import { apiGroup, apiGroupList, apiResourceList, apiVersions, versionDoc } from './discovery';
import { ApiError } from './objects';
import { findResource } from './resources';
import { openapiV2Protobuf, openapiV3Doc, openapiV3Root } from './openapi';
import { Rest, type Target } from './rest';
import { proxyUpgrade } from './stream-proxy';
import { ProtobufError, readEnvelope, type Envelope } from './protobuf';
import { decodeObject } from './protobuf-schema';
import type { KubeObject } from './objects';
import type { Duplex } from 'node:stream';

export interface ApiServerOptions {
  store: Store;
  tls: { key: string; cert: string; ca: string };
  host: string;
  port: number;
  /** A line per request (method, path, code), for the server's log. */
  log?: (line: string) => void;
}

/** The node's answer for kubectl exec/attach/port-forward: a CRI streaming URL (set when a node agent runs). */
export type PodStream = (kind: 'exec' | 'attach' | 'portforward', pod: KubeObject, q: URLSearchParams) => Promise<string>;

export interface ApiServer {
  port: number;
  rest: Rest;
  podStream: PodStream | null;
  close(): Promise<void>;
}

const MAX_BODY = 3 * 1024 * 1024; // etcd's request limit, as Kubernetes'

/** /api/v1/..., /apis/GROUP/VERSION/...: the resource, namespace, name and subresource. */
export function parseResourcePath(path: string): Target | null {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) {
    group = '';
    version = parts[1] as string;
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1] as string;
    version = parts[2] as string;
    rest = parts.slice(3);
  } else return null;
  let namespace: string | null = null;
  // namespaces/NS/RESOURCE...: a namespaced path; namespaces/NS[/status|finalize]: the Namespace itself.
  if (rest[0] === 'namespaces' && rest.length >= 3 && !(rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize'))) {
    namespace = rest[1] as string;
    rest = rest.slice(2);
  }
  const type = findResource(group, version, rest[0] as string);
  if (!type) return null;
  if (!type.namespaced && namespace !== null) return null;
  const t: Target = { type, namespace };
  if (rest[1] !== undefined) t.name = rest[1];
  if (rest[2] !== undefined) t.subresource = rest[2];
  if (rest.length > 3) return null;
  // A namespaced kind addressed without a namespace: only a list or watch across all of them.
  if (type.namespaced && namespace === null && t.name !== undefined) return null;
  return t;
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new ApiError(413, 'RequestEntityTooLarge', `the request body is larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

const VERB: Record<string, string> = { POST: 'create', PUT: 'update', DELETE: 'delete' };

/**
 * A protobuf body (kubectl 1.33's typed `create` commands send nothing
 * else, and client-go does not fall back to JSON) as the JSON object it
 * stands for. A kind without a schema here gets kube-apiserver's 415 for a
 * media type a resource does not take (as for custom resources), listing
 * what it does take. A body we cannot read gets 400, as kube-apiserver's
 * decode errors (transformDecodeError): the media type is fine, this
 * object is not; a field our table lacks is refused by name rather than
 * dropped, since storing less than was sent would be a silent loss.
 */
function protobufBody(raw: Buffer, method: string, target: Target): unknown {
  const want = target.subresource === 'scale' ? 'Scale' : method === 'DELETE' ? 'DeleteOptions' : target.type.kind;
  const verb = VERB[method] ?? method.toLowerCase();
  const unsupported = (): ApiError => new ApiError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/merge-patch+json, application/strategic-merge-patch+json, application/json-patch+json');
  if (method === 'PATCH') throw unsupported(); // patches are JSON documents, in any client
  // A subresource not served (serviceaccounts/token for `kubectl create token`): rest.ts answers 404 whatever the body.
  if (target.subresource && target.subresource !== 'status' && target.subresource !== 'scale') return null;
  let env: Envelope;
  try {
    env = readEnvelope(raw);
  } catch (e) {
    if (!(e instanceof ProtobufError)) throw e;
    throw new ApiError(400, 'BadRequest', `the object provided is unrecognized (must be of type ${want}): cannot ${verb} from protobuf: ${e.message}`);
  }
  let object: Record<string, unknown> | null;
  try {
    object = decodeObject(env);
  } catch (e) {
    if (!(e instanceof ProtobufError)) throw e;
    const version = env.apiVersion.split('/').pop() ?? '';
    const where = e.path ? ` (at ${e.path})` : '';
    const hint = e.unknownField ? '; send it as JSON (kubectl apply -f does)' : '';
    throw new ApiError(400, 'BadRequest', `${env.kind} in version "${version}" cannot be handled as a ${want}: cannot ${verb} from protobuf: ${e.message}${where}${hint}`);
  }
  if (!object) throw unsupported();
  return object;
}

export async function startApiServer(o: ApiServerOptions): Promise<ApiServer> {
  const rest = new Rest(o.store);
  const server = https.createServer({ key: o.tls.key, cert: o.tls.cert, ca: o.tls.ca, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    void serve(req, res).catch((e: unknown) => {
      const err = e instanceof ApiError ? e : new ApiError(500, 'InternalError', `Internal error occurred: ${(e as Error).message ?? String(e)}`);
      if (!res.headersSent) send(res, err.code, err.status());
      else res.end();
    });
  });
  const self: { podStream: PodStream | null } = { podStream: null };
  // exec, attach, port-forward: the upgrade goes to the node's CRI streaming server.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void upgrade(req, socket, head).catch((e: unknown) => {
      const err = e instanceof ApiError ? e : new ApiError(500, 'InternalError', `Internal error occurred: ${(e as Error).message}`);
      const body = JSON.stringify(err.status());
      socket.end(`HTTP/1.1 ${err.code} ${err.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    });
  });
  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://server');
    if (!(req.socket as TLSSocket).authorized) throw new ApiError(401, 'Unauthorized', 'Unauthorized: a client certificate signed by the cluster CA is required');
    const t = parseResourcePath(url.pathname);
    const kind = t?.subresource;
    if (!t || t.type.kind !== 'Pod' || t.name === undefined || (kind !== 'exec' && kind !== 'attach' && kind !== 'portforward')) {
      throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    }
    const pod = rest.pod(t);
    if (!self.podStream) throw new ApiError(400, 'BadRequest', `no node agent runs here to ${kind} into pod "${t.name}" (start the server with --container-runtime-endpoint)`);
    let target: string;
    try {
      target = await self.podStream(kind, pod, url.searchParams);
    } catch (e) {
      throw new ApiError(400, 'BadRequest', `unable to ${kind} into pod "${t.name}": ${(e as Error).message}`);
    }
    o.log?.(`${req.method} ${url.pathname}${url.search} upgrade → ${new URL(target).host}`);
    proxyUpgrade(req, socket, head, target, (e) => o.log?.(`${kind} ${t.name}: ${e.message}`));
  }
  const address = (): string => `${o.host}:${(server.address() as { port: number }).port}`;

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://server');
    const t0 = Date.now();
    res.on('finish', () => o.log?.(`${req.method} ${url.pathname}${url.search} ${res.statusCode} ${Date.now() - t0}ms`));
    // Authentication: a client certificate from our CA, or nothing at all.
    if (!(req.socket as TLSSocket).authorized) {
      throw new ApiError(401, 'Unauthorized', 'Unauthorized: a client certificate signed by the cluster CA is required (see `mycontainer kube kubeconfig`)');
    }
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (req.method === 'GET') {
      if (path === '/healthz' || path === '/livez' || path === '/readyz') {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('ok');
        return;
      }
      if (path === '/version') return send(res, 200, versionDoc());
      if (path === '/openapi/v3') return send(res, 200, openapiV3Root());
      if (path === '/openapi/v2' || path === '/swagger-2.0.0.pb-v1') {
        const pb = openapiV2Protobuf();
        res.writeHead(200, { 'Content-Type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf', 'Content-Length': pb.length });
        res.end(pb);
        return;
      }
      const oa = /^\/openapi\/v3\/(.+)$/.exec(path)?.[1];
      if (oa) {
        const doc = openapiV3Doc(oa);
        if (doc) return send(res, 200, doc);
      }
      if (path === '/api') return send(res, 200, apiVersions(address()));
      if (path === '/apis') return send(res, 200, apiGroupList());
      const gv = /^\/api\/(v1)$/.exec(path)?.[1] ?? /^\/apis\/([^/]+\/[^/]+)$/.exec(path)?.[1];
      if (gv) {
        const doc = apiResourceList(gv);
        if (doc) return send(res, 200, doc);
      }
      const g = /^\/apis\/([^/]+)$/.exec(path)?.[1];
      if (g) {
        const doc = apiGroup(g);
        if (doc) return send(res, 200, doc);
      }
    }
    const target = parseResourcePath(path);
    if (!target) throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${req.method} ${path})`);
    const raw = req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH' || req.method === 'DELETE' ? await readBody(req) : Buffer.alloc(0);
    let body: unknown = null;
    if (raw.length > 0 && /^application\/vnd\.kubernetes\.protobuf\b/.test(String(req.headers['content-type'] ?? ''))) {
      body = protobufBody(raw, req.method ?? 'POST', target);
    } else if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch (e) {
        throw new ApiError(400, 'BadRequest', `the request body is not valid JSON: ${(e as Error).message}`);
      }
    }
    const accept = String(req.headers['accept'] ?? '');
    rest.warnings = [];
    const reply = rest.handle({
      method: req.method ?? 'GET',
      target,
      query: url.searchParams,
      table: /as=Table/.test(accept),
      body,
      contentType: String(req.headers['content-type'] ?? 'application/json'),
    });
    // fieldValidation=Warn: kubectl prints these as "Warning: unknown field ...".
    if (rest.warnings.length > 0) res.setHeader('Warning', rest.warnings.map((w) => `299 - ${JSON.stringify(w)}`));
    if ('stream' in reply) reply.stream(res);
    else send(res, reply.code, reply.body);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  return {
    rest,
    get podStream() {
      return self.podStream;
    },
    set podStream(f: PodStream | null) {
      self.podStream = f;
    },
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
