// Registry credentials and the WWW-Authenticate challenge.
//
// Credentials are looked up, first match wins, in:
//   1. an explicit auth file (--authfile), else $REGISTRY_AUTH_FILE;
//   2. $XDG_RUNTIME_DIR/containers/auth.json (podman's default);
//   3. ~/.docker/config.json ($DOCKER_CONFIG/config.json).
// Each is `{"auths": {"host[:port]": {"auth": base64("user:pass")}}}`; docker
// writes docker.io as "https://index.docker.io/v1/". Credential helpers
// (credsStore/credHelpers) are not run.
//
// Credentials may also be given for one pull (CRI's PullImage AuthConfig):
// a username and password, an identity token (an OAuth2 refresh token, traded
// at the token server for an access token), or a registry token (sent as is,
// as `Authorization: Bearer`).

import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface Credentials {
  username?: string | undefined;
  password?: string | undefined;
  /** An OAuth2 refresh token (docker login with an identity provider). */
  identityToken?: string | undefined;
  /** A bearer token for the registry itself, sent as is. */
  registryToken?: string | undefined;
}

/** Whether there is a username to send as basic auth. */
export function hasBasic(c: Credentials | undefined): c is Credentials & { username: string } {
  return c !== undefined && typeof c.username === 'string' && c.username !== '';
}

export type CredentialLookup = (registry: string) => Credentials | undefined;

export function authFiles(explicit?: string): string[] {
  const files: string[] = [];
  const env = process.env;
  if (explicit) files.push(explicit);
  else if (env['REGISTRY_AUTH_FILE']) files.push(env['REGISTRY_AUTH_FILE']);
  if (env['XDG_RUNTIME_DIR']) files.push(join(env['XDG_RUNTIME_DIR'], 'containers', 'auth.json'));
  files.push(join(env['DOCKER_CONFIG'] ?? join(env['HOME'] ?? homedir(), '.docker'), 'config.json'));
  return files;
}

function keysFor(registry: string): string[] {
  if (registry === 'docker.io') return ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1/', 'https://index.docker.io/v1'];
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
}

function fromEntry(v: unknown): Credentials | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const e = v as { auth?: unknown; username?: unknown; password?: unknown; identitytoken?: unknown };
  let username = typeof e.username === 'string' ? e.username : '';
  let password = typeof e.password === 'string' ? e.password : '';
  if (typeof e.auth === 'string' && e.auth !== '') {
    const plain = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = plain.indexOf(':');
    if (i < 0) return undefined;
    username = plain.slice(0, i);
    password = plain.slice(i + 1);
  }
  const identityToken = typeof e.identitytoken === 'string' && e.identitytoken !== '' ? e.identitytoken : undefined;
  if (username === '' && identityToken === undefined) return undefined;
  return { username, password, identityToken };
}

/** Looks credentials up in the auth files (read once, when first needed). */
export function fileCredentials(explicit?: string): CredentialLookup {
  let docs: unknown[] | undefined;
  return (registry) => {
    docs ??= authFiles(explicit).flatMap((f) => {
      try {
        return [JSON.parse(readFileSync(f, 'utf8')) as unknown];
      } catch {
        return [];
      }
    });
    for (const doc of docs) {
      const auths = (doc as { auths?: Record<string, unknown> }).auths;
      if (!auths) continue;
      for (const k of keysFor(registry)) {
        const c = fromEntry(auths[k]);
        if (c) return c;
      }
    }
    return undefined;
  };
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses `WWW-Authenticate: Bearer realm="https://…",service="…",scope="…"`.
 * Several challenges may be joined with commas; each starts with a scheme.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let cur: Challenge | undefined;
  let i = 0;
  const isTok = (ch: string | undefined): boolean => ch !== undefined && /[A-Za-z0-9!#$%&'*+.^_`|~/-]/.test(ch);
  const skip = (chars: string): void => {
    while (i < header.length && chars.includes(header[i]!)) i++;
  };
  while (i < header.length) {
    skip(' \t,');
    const start = i;
    while (isTok(header[i])) i++;
    if (i === start) {
      i++;
      continue;
    }
    const tok = header.slice(start, i);
    skip(' \t');
    if (header[i] !== '=' || cur === undefined) {
      cur = { scheme: tok.toLowerCase(), params: {} };
      out.push(cur);
      continue;
    }
    i++;
    skip(' \t');
    let value = '';
    if (header[i] === '"') {
      i++;
      while (i < header.length && header[i] !== '"') {
        if (header[i] === '\\') i++;
        value += header[i] ?? '';
        i++;
      }
      i++;
    } else {
      const vs = i;
      while (i < header.length && header[i] !== ',' && header[i] !== ' ') i++;
      value = header.slice(vs, i);
    }
    cur.params[tok.toLowerCase()] = value;
  }
  return out;
}

export function basicHeader(c: Credentials): string {
  return 'Basic ' + Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`).toString('base64');
}
