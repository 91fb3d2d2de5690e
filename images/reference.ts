// Image references, parsed with Docker's rules (distribution/reference):
//
//   [domain[:port]/]path[:tag][@algorithm:hex]
//
// - the first component is a domain only if it has a '.' or ':' or is
//   `localhost` (or has an uppercase letter, which a path can't); otherwise
//   the domain is docker.io;
// - on docker.io a one-component path gets `library/`;
// - with neither tag nor digest the tag is `latest`; a reference may carry
//   both a tag and a digest, and then the digest decides what is pulled.

import { RuntimeError } from '../runtime/sys/errors';

export const DEFAULT_DOMAIN = 'docker.io';
/** Where docker.io's API actually lives. */
export const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';

export interface Reference {
  /** Registry host, with port if any: `docker.io`, `127.0.0.1:5000`. */
  readonly domain: string;
  /** Repository path inside the registry: `library/busybox`. */
  readonly path: string;
  readonly tag?: string | undefined;
  readonly digest?: string | undefined;
}

const alnum = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alnum}(?:${separator}${alnum})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const ipv6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainRe = new RegExp(`^(?:${domainComponent}(?:\\.${domainComponent})*|${ipv6})(?::[0-9]+)?$`);
const pathRe = new RegExp(`^${pathComponent}(?:/${pathComponent})*$`);
const tagRe = /^[\w][\w.-]{0,127}$/;
const digestRe = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const MAX_NAME = 255;

function invalid(ref: string, why: string): RuntimeError {
  return new RuntimeError(`invalid reference "${ref}": ${why}`, { code: 'EINVALIDREF' });
}

/** Whether `s` is a registry host as a reference carries it: `host[:port]`. */
export function isValidDomain(s: string): boolean {
  return domainRe.test(s);
}

/** Whether `s` is a repository path: lowercase components joined by `/`. */
export function isValidPath(s: string): boolean {
  return pathRe.test(s);
}

/** Checks a digest's form; sha256 digests must be 64 lowercase hex digits. */
export function validateDigest(d: string): string {
  if (!digestRe.test(d)) throw new RuntimeError(`invalid digest "${d}"`, { code: 'EINVALIDREF' });
  const [alg, hex] = d.split(':') as [string, string];
  if (alg === 'sha256' && !/^[a-f0-9]{64}$/.test(hex)) throw new RuntimeError(`invalid sha256 digest "${d}"`, { code: 'EINVALIDREF' });
  if (alg === 'sha512' && !/^[a-f0-9]{128}$/.test(hex)) throw new RuntimeError(`invalid sha512 digest "${d}"`, { code: 'EINVALIDREF' });
  return d;
}

/** Parses a reference as `docker pull` does; defaults applied (library/, latest). */
export function parseReference(input: string, opts: { defaultTag?: boolean } = {}): Reference {
  const s = input.trim();
  if (s === '') throw invalid(input, 'empty');
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = validateDigest(rest.slice(at + 1));
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagRe.test(tag)) throw invalid(input, `bad tag "${tag}"`);
  }
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const i = rest.indexOf('/');
  if (i >= 0) {
    const first = rest.slice(0, i);
    if (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first) {
      domain = first;
      path = rest.slice(i + 1);
    }
  }
  if (!domainRe.test(domain)) throw invalid(input, `bad registry host "${domain}"`);
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  if (path.toLowerCase() !== path) throw invalid(input, 'repository name must be lowercase');
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  if (!pathRe.test(path)) throw invalid(input, `bad repository name "${path}"`);
  if (domain.length + 1 + path.length > MAX_NAME) throw invalid(input, `name longer than ${MAX_NAME} characters`);
  if (tag === undefined && digest === undefined && opts.defaultTag !== false) tag = 'latest';
  return { domain, path, tag, digest };
}

/** The repository: `docker.io/library/busybox`. */
export function repoName(r: Reference): string {
  return `${r.domain}/${r.path}`;
}

/** The full canonical form: `docker.io/library/busybox:latest@sha256:…`. */
export function formatReference(r: Reference): string {
  return `${repoName(r)}${r.tag !== undefined ? ':' + r.tag : ''}${r.digest !== undefined ? '@' + r.digest : ''}`;
}

/** The short form docker prints: `busybox:latest`, `127.0.0.1:5000/x:1`. */
export function familiarName(r: Reference): string {
  let name = repoName(r);
  if (r.domain === DEFAULT_DOMAIN) {
    name = r.path.startsWith('library/') ? r.path.slice('library/'.length) : r.path;
  }
  return `${name}${r.tag !== undefined ? ':' + r.tag : ''}${r.digest !== undefined ? '@' + r.digest : ''}`;
}

/** What the registry is asked for: the digest if there is one, else the tag. */
export function manifestRefOf(r: Reference): string {
  return r.digest ?? r.tag ?? 'latest';
}
