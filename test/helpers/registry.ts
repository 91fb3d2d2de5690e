// A real registry for image tests: Debian's docker-registry on 127.0.0.1, on
// a free port, with its config and storage in a temp dir. Optionally behind
// htpasswd basic auth or token auth (the token server is the test's own).
// `stop()` kills it and removes the dir; tests call it from t.after.

import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const REGISTRY_BIN = '/usr/bin/docker-registry';
export const SKOPEO = '/usr/bin/skopeo';
const SETPRIV = '/usr/bin/setpriv';

export interface RegistryHandle {
  /** `127.0.0.1:PORT` */
  host: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}

export interface RegistryAuth {
  htpasswd?: { file: string } | undefined;
  token?: { realm: string; service: string; issuer: string; certFile: string } | undefined;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startRegistry(auth: RegistryAuth = {}): Promise<RegistryHandle> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-registry-'));
  let child: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child!.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child!.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const lines = [
        'version: 0.1',
        'log:',
        '  level: error',
        '  accesslog:',
        '    disabled: true',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${path.join(dir, 'data')}`,
        '  delete:',
        '    enabled: true',
        'http:',
        `  addr: 127.0.0.1:${port}`,
      ];
      if (auth.htpasswd) lines.push('auth:', '  htpasswd:', '    realm: mycontainer-test', `    path: ${auth.htpasswd.file}`);
      if (auth.token) {
        lines.push('auth:', '  token:', `    realm: ${auth.token.realm}`, `    service: ${auth.token.service}`, `    issuer: ${auth.token.issuer}`, `    rootcertbundle: ${auth.token.certFile}`);
      }
      const cfg = path.join(dir, 'config.yml');
      fs.writeFileSync(cfg, lines.join('\n') + '\n');
      let stderr = '';
      // Under setpriv --pdeathsig, so the registry dies with the test process
      // even when a timeout kills it before its after hooks run.
      child = fs.existsSync(SETPRIV)
        ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', REGISTRY_BIN, 'serve', cfg], { stdio: ['ignore', 'ignore', 'pipe'] })
        : spawn(REGISTRY_BIN, ['serve', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const deadline = Date.now() + 15_000;
      let up = false;
      while (Date.now() < deadline && child.exitCode === null) {
        try {
          await fetch(`http://127.0.0.1:${port}/v2/`);
          up = true;
          break;
        } catch {
          await sleep(50);
        }
      }
      if (up) return { host: `127.0.0.1:${port}`, port, dir, stop };
      await stop().catch(() => {});
      if (attempt >= 2) throw new Error(`docker-registry did not start on port ${port}: ${stderr.trim()}`);
      fs.mkdirSync(dir, { recursive: true });
    }
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
}

/**
 * skopeo copy from an OCI layout to the registry (plain HTTP). Async: a
 * token server in the test's own process must keep answering meanwhile.
 */
export async function skopeoPush(layout: string, tag: string, dest: string, opts: { creds?: string; extra?: string[] } = {}): Promise<void> {
  const args = ['copy', '--quiet', '--dest-tls-verify=false'];
  if (opts.creds) args.push('--dest-creds', opts.creds);
  args.push(...(opts.extra ?? []), `oci:${layout}:${tag}`, `docker://${dest}`);
  // An empty auth file of its own, so the host's credentials never leak in.
  const authFile = path.join(os.tmpdir(), `mc-skopeo-auth-${process.pid}-${crypto.randomBytes(4).toString('hex')}.json`);
  fs.writeFileSync(authFile, '{"auths":{}}');
  try {
    await promisify(execFile)(SKOPEO, args, { env: { ...process.env, REGISTRY_AUTH_FILE: authFile } });
  } finally {
    fs.rmSync(authFile, { force: true });
  }
}

/** An EC P-256 key and self-signed cert for a test token server (openssl CLI). */
export function makeTokenKey(dir: string): { key: crypto.KeyObject; certFile: string; kid: string } {
  const keyFile = path.join(dir, 'token.key');
  const certFile = path.join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=mycontainer-test-token'], {
    stdio: 'ignore',
  });
  const key = crypto.createPrivateKey(fs.readFileSync(keyFile));
  // libtrust's key ID (what docker-registry matches a JWT "kid" against):
  // base32 of the first 240 bits of sha256(DER SubjectPublicKeyInfo), in groups of 4.
  const der = crypto.createPublicKey(key).export({ type: 'spki', format: 'der' });
  const b32 = base32(crypto.createHash('sha256').update(der).digest().subarray(0, 30));
  const kid = b32.match(/.{4}/g)!.join(':');
  return { key, certFile, kid };
}

function base32(buf: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of buf) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/** A registry JWT (ES256) granting `access` to `sub`. */
export function signToken(key: crypto.KeyObject, kid: string, claims: { issuer: string; service: string; sub: string; access: { type: string; name: string; actions: string[] }[] }): string {
  const now = Math.floor(Date.now() / 1000);
  const enc = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = enc({ typ: 'JWT', alg: 'ES256', kid });
  const body = enc({ iss: claims.issuer, sub: claims.sub, aud: claims.service, exp: now + 300, nbf: now - 10, iat: now, jti: crypto.randomBytes(8).toString('hex'), access: claims.access });
  const sig = crypto.sign('sha256', Buffer.from(`${head}.${body}`), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  return `${head}.${body}.${sig}`;
}

/** A proxy in front of the registry; `hook` may take over a response. */
export async function startProxy(
  upstream: RegistryHandle,
  hook: (req: http.IncomingMessage, up: http.IncomingMessage, res: http.ServerResponse) => boolean,
): Promise<{ host: string; requests: http.IncomingMessage[]; close(): Promise<void> }> {
  const requests: http.IncomingMessage[] = [];
  const srv = http.createServer((req, res) => {
    requests.push(req);
    const up = http.request({ host: '127.0.0.1', port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (ur) => {
      if (hook(req, ur, res)) return;
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  const port = await freePort();
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}
