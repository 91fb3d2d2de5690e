// registries.conf: containers-registries.conf(5), version 2, as podman, skopeo
// and CRI-O read it. This module parses and resolves (pure: text in, names
// and pull sources out); resolve.ts reads the files and pulls.
//
// FILES
//   The default is /etc/containers/registries.conf, then each
//   /etc/containers/registries.conf.d/*.conf drop-in in name order, as
//   containers/image does. A missing default file means the built-in
//   defaults: unqualified-search-registries = ["docker.io"] (docker's
//   behaviour; containers/image has none), no [[registry]], no aliases.
//   An explicit file (`--registries-conf F`, $REGISTRIES_CONFIG_PATH) is read
//   alone, without drop-ins, and must exist. A drop-in replaces what it
//   sets: unqualified-search-registries, short-name-mode and
//   credential-helpers when present, [[registry]] tables by prefix, aliases
//   by name (an alias set to "" removes it). Drop-ins must be v2; a main file
//   in the v1 format ([registries.search] / .insecure / .block) is converted
//   as containers/image converts it. Per-user files (~/.config/containers)
//   are not read.
//
// KEYS
//   unqualified-search-registries = ["host[:port]", ...]
//   short-name-mode = "enforcing" | "permissive" | "disabled": accepted and
//     checked, but we never prompt and never record an alias: we act as
//     "permissive" whatever it says (an alias if there is one, else each
//     search registry in order; podman's "enforcing" without a terminal would
//     refuse a short name that several search registries could serve).
//   credential-helpers = [...]: accepted and ignored (auth.ts reads the auth
//     files; no helper is run).
//   [[registry]]: prefix, location, insecure, blocked, mirror-by-digest-only.
//     prefix defaults to location; `*.example.com` matches any subdomain
//     (then location may be left out: the reference's own registry).
//     location may carry a path (`m:5000/k8s`); no URL scheme.
//   [[registry.mirror]]: location, insecure, pull-from-mirror = "all"
//     (default) | "digest-only" | "tag-only" (not with the registry's
//     mirror-by-digest-only).
//   [aliases]: "short/name" = "registry.example.com/repo", neither side with a
//     tag or digest.
//   Unknown keys are warnings; everything else that is wrong is an error
//   naming the file, and the line when it can be found:
//   `cannot read registries.conf /etc/x.conf: line 3: insecure must be true or false`.
//
// RESOLUTION
//   A fully-qualified name (its first component has a '.' or ':' or is
//   `localhost`, docker's rule) is pulled through the [[registry]] whose
//   prefix is the longest match of its `domain/path` (equal, or followed by
//   '/'; a wildcard matches the whole host[:port]). blocked: refused.
//   Otherwise its mirrors in order (those that pull-from-mirror allows for a
//   tag or a digest reference), then its location; each is the name with the
//   prefix replaced by the location: prefix "registry.k8s.io", mirror
//   "m:5000/k8s" → registry.k8s.io/pause:3.9 is fetched as m:5000/k8s/pause:3.9.
//   insecure: plain HTTP (so no TLS to verify; containers/image would try
//   HTTPS without verification first). No matching table: the name's own
//   registry. A pull by digest is verified whichever source serves it.
//   A short name (`busybox`, `foo/bar:1`) is its alias if [aliases] has it
//   (the tag or digest asked for carried over), else each
//   unqualified-search-registry in order, the first that has it winning.
//   Locally (findLocal, pull policy "missing"), a short name is found under
//   its alias, `localhost/NAME`, each search registry, and last docker.io/NAME
//   (where `tag`, `load` and `import` record names given without a registry).
//   The image is recorded and reported under the resolved name
//   (registry.k8s.io/pause:3.9), never a mirror's.

import { parse as parseToml } from 'smol-toml';
import { RuntimeError } from '../runtime/sys/errors';
import { DEFAULT_DOMAIN, formatReference, isValidDomain, isValidPath, parseReference, repoName, type Reference } from './reference';
import type { PullSource } from './registry';

export const DEFAULT_REGISTRIES_CONF = '/etc/containers/registries.conf';
export const DEFAULT_REGISTRIES_CONF_DIR = '/etc/containers/registries.conf.d';
/** The origin of the built-in defaults, in messages. */
export const BUILTIN_ORIGIN = 'the built-in defaults';

export type ShortNameMode = 'enforcing' | 'permissive' | 'disabled';
export type PullFromMirror = 'all' | 'digest-only' | 'tag-only';

export interface MirrorConf {
  readonly location: string;
  readonly insecure: boolean;
  readonly pullFromMirror: PullFromMirror;
}

export interface RegistryConf {
  readonly prefix: string;
  /** '' only with a wildcard prefix: the reference's own registry. */
  readonly location: string;
  readonly insecure: boolean;
  readonly blocked: boolean;
  readonly mirrorByDigestOnly: boolean;
  readonly mirrors: readonly MirrorConf[];
  /** The file that defined it. */
  readonly file: string;
}

export interface AliasConf {
  /** Normalized (`docker.io/library/alpine`); null when a file reset it with "". */
  readonly value: string | null;
  readonly file: string;
}

/** One file, as written: the optional fields are absent when the file does not set them. */
export interface RegistriesConfFile {
  readonly file: string;
  readonly unqualifiedSearchRegistries?: readonly string[] | undefined;
  readonly shortNameMode?: ShortNameMode | undefined;
  readonly credentialHelpers?: readonly string[] | undefined;
  readonly registries: readonly RegistryConf[];
  readonly aliases: Readonly<Record<string, AliasConf>>;
  readonly warnings: readonly string[];
}

/** The merged configuration. */
export interface RegistriesConf {
  /** The files read, in order ([] for the built-in defaults alone). */
  readonly files: readonly string[];
  readonly unqualifiedSearchRegistries: readonly string[];
  /** The file that set unqualifiedSearchRegistries (or BUILTIN_ORIGIN). */
  readonly searchOrigin: string;
  readonly shortNameMode: ShortNameMode;
  readonly credentialHelpers: readonly string[];
  /** One per prefix, sorted by prefix. */
  readonly registries: readonly RegistryConf[];
  readonly aliases: Readonly<Record<string, AliasConf>>;
  /** Unknown keys and the like, for the caller to print. */
  readonly warnings: readonly string[];
}

/** Nothing configured, as a file that sets nothing: short names can only be found locally. */
export function emptyRegistriesConf(origin: string): RegistriesConf {
  return { files: [], unqualifiedSearchRegistries: [], searchOrigin: origin, shortNameMode: 'permissive', credentialHelpers: [], registries: [], aliases: {}, warnings: [] };
}

/** What a machine without /etc/containers/registries.conf gets: docker.io for short names. */
export function builtinRegistriesConf(): RegistriesConf {
  return { ...emptyRegistriesConf(BUILTIN_ORIGIN), unqualifiedSearchRegistries: [DEFAULT_DOMAIN] };
}

// ---------------------------------------------------------------------------
// Parsing

class ConfError extends Error {
  constructor(
    message: string,
    readonly line?: number,
  ) {
    super(message);
  }
}

/** Lines of table headers and keys in the source, so that errors can say where. */
class Locator {
  private readonly lines: string[];
  private readonly headers: { line: number; name: string }[] = [];

  constructor(text: string) {
    this.lines = text.split(/\r?\n/);
    this.lines.forEach((l, i) => {
      const m = /^\s*\[\[?\s*([^\]]*?)\s*\]\]?\s*(?:#.*)?$/.exec(l);
      if (m) this.headers.push({ line: i + 1, name: m[1]!.replace(/\s*\.\s*/g, '.').replace(/"/g, '') });
    });
  }

  /** [first, end) lines of the n-th table with this header name (0-based n). */
  section(name: string, n: number, within?: [number, number]): [number, number] | undefined {
    const hs = this.headers.filter((h) => h.name === name && (!within || (h.line >= within[0] && h.line < within[1])));
    const h = hs[n];
    if (!h) return undefined;
    const next = this.headers.find((x) => x.line > h.line && !x.name.startsWith(`${name}.`));
    return [h.line, next ? next.line : this.lines.length + 1];
  }

  /** The [[registry]] table number i, and its mirrors'. */
  registry(i: number): [number, number] | undefined {
    const hs = this.headers.filter((h) => h.name === 'registry');
    const h = hs[i];
    if (!h) return undefined;
    const next = this.headers.find((x) => x.line > h.line && x.name !== 'registry.mirror');
    return [h.line, next ? next.line : this.lines.length + 1];
  }

  mirror(i: number, j: number): [number, number] | undefined {
    const r = this.registry(i);
    if (!r) return undefined;
    const hs = this.headers.filter((h) => h.name === 'registry.mirror' && h.line > r[0] && h.line < r[1]);
    const h = hs[j];
    if (!h) return undefined;
    const next = this.headers.find((x) => x.line > h.line);
    return [h.line, next ? next.line : this.lines.length + 1];
  }

  /** The line setting `key` in [from, to) (the whole top level when no range). */
  key(key: string, range?: [number, number]): number | undefined {
    const [from, to] = range ? [range[0] + 1, range[1]] : [1, this.headers[0]?.line ?? this.lines.length + 1];
    const esc = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const re = new RegExp(`^\\s*(?:${esc}|"${esc}"|'${esc}')\\s*=`);
    for (let l = from; l < to; l++) if (re.test(this.lines[l - 1] ?? '')) return l;
    return range ? range[0] : undefined;
  }
}

type Table = Record<string, unknown>;

const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

function str(v: unknown, what: string, line: number | undefined): string {
  if (typeof v !== 'string') throw new ConfError(`${what} must be a string, not ${show(v)}`, line);
  return v;
}

function bool(v: unknown, what: string, line: number | undefined): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new ConfError(`${what} must be true or false, not ${show(v)}`, line);
  return v;
}

function strings(v: unknown, what: string, line: number | undefined): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new ConfError(`${what} must be an array of strings, not ${show(v)}`, line);
  return v as string[];
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'an array';
  if (isTable(v)) return 'a table';
  return String(v);
}

/** containers/image's parseLocation: trailing '/' dropped, no URL scheme. */
function cleanLocation(input: string, what: string, line: number | undefined): string {
  const s = input.replace(/\/+$/, '');
  if (/^https?:\/\//.test(s)) throw new ConfError(`${what} "${input}": URL schemes are not supported (write host[:port][/path]; insecure = true for plain HTTP)`, line);
  return s;
}

/** host[:port][/path], as a location or a non-wildcard prefix. */
function checkRepoPrefix(s: string, what: string, line: number | undefined): void {
  const slash = s.indexOf('/');
  const host = slash < 0 ? s : s.slice(0, slash);
  const path = slash < 0 ? '' : s.slice(slash + 1);
  if (!isValidDomain(host)) throw new ConfError(`${what} "${s}": "${host}" is not a registry host[:port]`, line);
  if (slash >= 0 && !isValidPath(path)) throw new ConfError(`${what} "${s}": "${path}" is not a repository path`, line);
}

function unknownKeys(t: Table, known: readonly string[], where: string, warn: (msg: string, line?: number) => void, lineOf: (k: string) => number | undefined): void {
  for (const k of Object.keys(t)) if (!known.includes(k)) warn(`unknown key "${k}"${where} ignored`, lineOf(k));
}

const TOP_KEYS = ['unqualified-search-registries', 'short-name-mode', 'registry', 'aliases', 'credential-helpers', 'additional-layer-store-auth-helper', 'registries'];
const REGISTRY_KEYS = ['prefix', 'location', 'insecure', 'blocked', 'mirror-by-digest-only', 'mirror', 'pull-from-mirror'];
const MIRROR_KEYS = ['location', 'insecure', 'pull-from-mirror'];

/** Where a name is a short name: no registry in its first component (docker's rule, as parseReference). */
export function isShortName(name: string): boolean {
  const s = name.trim();
  const at = s.indexOf('@');
  const noDigest = at >= 0 ? s.slice(0, at) : s;
  const i = noDigest.indexOf('/');
  if (i < 0) return true;
  const first = noDigest.slice(0, i);
  return !(/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first);
}

/** `foo/bar:1@sha256:…` → repo `foo/bar`, tag `1`, digest. */
function splitName(name: string): { repo: string; tag?: string | undefined; digest?: string | undefined } {
  let s = name.trim();
  let digest: string | undefined;
  const at = s.indexOf('@');
  if (at >= 0) {
    digest = s.slice(at + 1);
    s = s.slice(0, at);
  }
  let tag: string | undefined;
  const colon = s.lastIndexOf(':');
  if (colon > s.lastIndexOf('/')) {
    tag = s.slice(colon + 1);
    s = s.slice(0, colon);
  }
  return { repo: s, tag, digest };
}

function parseAliases(t: Table, file: string, loc: Locator): Record<string, AliasConf> {
  const out: Record<string, AliasConf> = {};
  const range = loc.section('aliases', 0);
  for (const [k, v] of Object.entries(t)) {
    const line = range ? loc.key(k, range) : undefined;
    const value = str(v, `alias "${k}"`, line);
    const key = splitName(k);
    if (!isShortName(k)) throw new ConfError(`invalid short name "${k}" in [aliases]: must not contain a registry`, line);
    if (key.tag !== undefined || key.digest !== undefined) throw new ConfError(`invalid short name "${k}" in [aliases]: must not contain a tag or digest`, line);
    try {
      parseReference(k);
    } catch (e) {
      throw new ConfError(`invalid short name "${k}" in [aliases]: ${(e as Error).message}`, line);
    }
    if (value === '') {
      out[k] = { value: null, file };
      continue;
    }
    const val = splitName(value);
    if (val.digest !== undefined) throw new ConfError(`invalid alias "${k}" = "${value}": must not contain a digest`, line);
    if (val.tag !== undefined) throw new ConfError(`invalid alias "${k}" = "${value}": must not contain a tag`, line);
    if (isShortName(value)) throw new ConfError(`invalid alias "${k}" = "${value}": must contain a registry and a repository`, line);
    let ref: Reference;
    try {
      ref = parseReference(value, { defaultTag: false });
    } catch (e) {
      throw new ConfError(`invalid alias "${k}" = "${value}": ${(e as Error).message}`, line);
    }
    out[k] = { value: repoName(ref), file };
  }
  return out;
}

function parseMirror(m: unknown, i: number, j: number, registryWhat: string, loc: Locator, warn: (msg: string, line?: number) => void, mirrorByDigestOnly: boolean): MirrorConf {
  const range = loc.mirror(i, j) ?? loc.registry(i);
  const lineOf = (k: string): number | undefined => (range ? loc.key(k, range) : undefined);
  const what = `${registryWhat} mirror #${j + 1}`;
  if (!isTable(m)) throw new ConfError(`${what} must be a table ([[registry.mirror]])`, range?.[0]);
  unknownKeys(m, MIRROR_KEYS, ` in ${what}`, warn, lineOf);
  if (m['location'] === undefined || m['location'] === '') throw new ConfError(`${what}: location is unset`, range?.[0]);
  const location = cleanLocation(str(m['location'], `${what} location`, lineOf('location')), `${what} location`, lineOf('location'));
  checkRepoPrefix(location, `${what} location`, lineOf('location'));
  const insecure = bool(m['insecure'], `${what} insecure`, lineOf('insecure'));
  let pullFromMirror: PullFromMirror = 'all';
  if (m['pull-from-mirror'] !== undefined) {
    const p = str(m['pull-from-mirror'], `${what} pull-from-mirror`, lineOf('pull-from-mirror'));
    if (p !== '') {
      if (p !== 'all' && p !== 'digest-only' && p !== 'tag-only') {
        throw new ConfError(`${what}: pull-from-mirror must be "all", "digest-only" or "tag-only", not "${p}"`, lineOf('pull-from-mirror'));
      }
      if (mirrorByDigestOnly) throw new ConfError(`${what}: pull-from-mirror cannot be set when the registry has mirror-by-digest-only`, lineOf('pull-from-mirror'));
      pullFromMirror = p;
    }
  }
  return { location, insecure, pullFromMirror };
}

function parseRegistry(r: unknown, i: number, file: string, loc: Locator, warn: (msg: string, line?: number) => void): RegistryConf {
  const range = loc.registry(i);
  const lineOf = (k: string): number | undefined => (range ? loc.key(k, range) : undefined);
  let what = `[[registry]] #${i + 1}`;
  if (!isTable(r)) throw new ConfError(`${what} must be a table`, range?.[0]);
  const rawPrefix = r['prefix'] === undefined ? '' : str(r['prefix'], `${what} prefix`, lineOf('prefix'));
  const rawLocation = r['location'] === undefined ? '' : str(r['location'], `${what} location`, lineOf('location'));
  if (rawPrefix !== '' || rawLocation !== '') what = `[[registry]] "${rawPrefix || rawLocation}"`;
  unknownKeys(r, REGISTRY_KEYS, ` in ${what}`, warn, lineOf);
  const location = cleanLocation(rawLocation, `${what} location`, lineOf('location'));
  let prefix = cleanLocation(rawPrefix, `${what} prefix`, lineOf('prefix'));
  if (prefix === '') {
    if (location === '') throw new ConfError(`${what}: both prefix and location are unset`, range?.[0]);
    prefix = location;
  }
  if (prefix.startsWith('*.')) {
    if (/[/@:]/.test(prefix) || !isValidDomain(prefix.slice(2))) throw new ConfError(`${what}: a wildcard prefix must be *.example.com (no port, path, tag or digest), not "${prefix}"`, lineOf('prefix'));
  } else {
    if (location === '') throw new ConfError(`${what}: location is unset and the prefix is not a wildcard (*.example.com)`, range?.[0]);
    checkRepoPrefix(prefix, `${what} prefix`, lineOf('prefix'));
  }
  if (location !== '') checkRepoPrefix(location, `${what} location`, lineOf('location'));
  if (r['pull-from-mirror'] !== undefined) throw new ConfError(`${what}: pull-from-mirror is for [[registry.mirror]] tables, not the registry itself`, lineOf('pull-from-mirror'));
  const insecure = bool(r['insecure'], `${what} insecure`, lineOf('insecure'));
  const blocked = bool(r['blocked'], `${what} blocked`, lineOf('blocked'));
  const mirrorByDigestOnly = bool(r['mirror-by-digest-only'], `${what} mirror-by-digest-only`, lineOf('mirror-by-digest-only'));
  const rawMirrors = r['mirror'] ?? [];
  if (!Array.isArray(rawMirrors)) throw new ConfError(`${what}: mirror must be an array of tables ([[registry.mirror]])`, lineOf('mirror'));
  const mirrors = rawMirrors.map((m, j) => parseMirror(m, i, j, what, loc, warn, mirrorByDigestOnly));
  return { prefix, location, insecure, blocked, mirrorByDigestOnly, mirrors, file };
}

/** containers/image's ConvertToV2: each listed registry a [[registry]] of its own. */
function convertV1(v1: unknown, file: string, loc: Locator): { search?: string[]; registries: RegistryConf[] } {
  const range = loc.section('registries', 0);
  if (!isTable(v1)) throw new ConfError('registries (the v1 format) must be a table', range?.[0]);
  const list = (name: string): string[] | undefined => {
    const t = v1[name];
    if (t === undefined) return undefined;
    const r = loc.section(`registries.${name}`, 0);
    if (!isTable(t)) throw new ConfError(`[registries.${name}] must be a table`, r?.[0]);
    return t['registries'] === undefined ? [] : strings(t['registries'], `[registries.${name}] registries`, r ? loc.key('registries', r) : undefined);
  };
  for (const k of Object.keys(v1)) if (!['search', 'insecure', 'block'].includes(k)) throw new ConfError(`unknown table [registries.${k}] (the v1 format has search, insecure and block)`, range?.[0]);
  const byLocation = new Map<string, { insecure: boolean; blocked: boolean }>();
  const get = (l: string): { insecure: boolean; blocked: boolean } => {
    const location = cleanLocation(l, 'v1 registry', undefined);
    checkRepoPrefix(location, 'v1 registry', undefined);
    let e = byLocation.get(location);
    if (!e) byLocation.set(location, (e = { insecure: false, blocked: false }));
    return e;
  };
  for (const l of list('block') ?? []) get(l).blocked = true;
  for (const l of list('insecure') ?? []) get(l).insecure = true;
  const registries = [...byLocation].map(([location, e]): RegistryConf => ({ prefix: location, location, ...e, mirrorByDigestOnly: false, mirrors: [], file }));
  const search = list('search');
  return search === undefined ? { registries } : { search, registries };
}

/**
 * Parses one registries.conf file. `dropIn`: a registries.conf.d file, which
 * must be in the v2 format. Throws `cannot read registries.conf FILE: line N: …`.
 */
export function parseRegistriesConfFile(text: string, file: string, opts: { dropIn?: boolean } = {}): RegistriesConfFile {
  const fail = (msg: string, line?: number): RuntimeError =>
    new RuntimeError(`cannot read registries.conf ${file}: ${line !== undefined ? `line ${line}: ` : ''}${msg}`, { code: 'EREGISTRIESCONF' });
  let doc: Table;
  try {
    doc = parseToml(text) as Table;
  } catch (e) {
    const err = e as Error & { line?: number; column?: number };
    const msg = (err.message.split('\n')[0] ?? err.message).replace(/^Invalid TOML document:\s*/, '');
    const src = err.line !== undefined ? text.split(/\r?\n/)[err.line - 1]?.trim() : undefined;
    throw fail(`${msg}${err.column !== undefined ? ` at column ${err.column}` : ''}${src ? ` of ${JSON.stringify(src)}` : ''}`, err.line);
  }
  const loc = new Locator(text);
  const warnings: string[] = [];
  const warn = (msg: string, line?: number): void => void warnings.push(`${file}: ${line !== undefined ? `line ${line}: ` : ''}${msg}`);
  try {
    unknownKeys(doc, TOP_KEYS, '', warn, (k) => loc.key(k) ?? loc.section(k, 0)?.[0]);
    let unqualifiedSearchRegistries: string[] | undefined;
    if (doc['unqualified-search-registries'] !== undefined) {
      const line = loc.key('unqualified-search-registries');
      unqualifiedSearchRegistries = strings(doc['unqualified-search-registries'], 'unqualified-search-registries', line).map((r) => {
        const host = cleanLocation(r, 'unqualified-search-registries entry', line);
        if (!isValidDomain(host)) throw new ConfError(`unqualified-search-registries entry "${r}" is not a registry host[:port]`, line);
        return host;
      });
    }
    let shortNameMode: ShortNameMode | undefined;
    if (doc['short-name-mode'] !== undefined) {
      const line = loc.key('short-name-mode');
      const m = str(doc['short-name-mode'], 'short-name-mode', line);
      if (m !== '') {
        if (m !== 'enforcing' && m !== 'permissive' && m !== 'disabled') throw new ConfError(`short-name-mode must be "enforcing", "permissive" or "disabled", not "${m}"`, line);
        shortNameMode = m;
      }
    }
    let credentialHelpers: string[] | undefined;
    if (doc['credential-helpers'] !== undefined) credentialHelpers = strings(doc['credential-helpers'], 'credential-helpers', loc.key('credential-helpers'));
    if (doc['additional-layer-store-auth-helper'] !== undefined) str(doc['additional-layer-store-auth-helper'], 'additional-layer-store-auth-helper', loc.key('additional-layer-store-auth-helper'));

    const rawRegistries = doc['registry'] ?? [];
    if (!Array.isArray(rawRegistries)) throw new ConfError('registry must be an array of tables ([[registry]], not [registry])', loc.section('registry', 0)?.[0] ?? loc.key('registry'));
    let registries = rawRegistries.map((r, i) => parseRegistry(r, i, file, loc, warn));

    if (doc['registries'] !== undefined) {
      const line = loc.section('registries', 0)?.[0] ?? loc.key('registries');
      if (opts.dropIn) throw new ConfError('a drop-in file must be in the v2 format ([registries.search] etc. are v1)', line);
      const v2Set = unqualifiedSearchRegistries !== undefined || registries.length > 0 || doc['aliases'] !== undefined || shortNameMode !== undefined;
      if (v2Set) throw new ConfError('mixing the v1 format ([registries.search] etc.) with v2 keys is not supported', line);
      const v1 = convertV1(doc['registries'], file, loc);
      registries = v1.registries;
      if (v1.search !== undefined) unqualifiedSearchRegistries = v1.search;
    }

    // One location cannot be both secure and insecure, blocked and not.
    for (const r of registries) {
      if (r.location === '') continue;
      const other = registries.find((o) => o.location === r.location && (o.insecure !== r.insecure || o.blocked !== r.blocked));
      if (other) {
        const what = other.insecure !== r.insecure ? 'insecure' : 'blocked';
        throw new ConfError(`registry location "${r.location}" is defined more than once with conflicting "${what}" settings`, loc.registry(registries.indexOf(other))?.[0]);
      }
    }
    // The first table of a prefix wins (as containers/image: later ones could never match).
    const seen = new Set<string>();
    registries = registries.filter((r, i) => {
      if (!seen.has(r.prefix)) return seen.add(r.prefix);
      warn(`[[registry]] prefix "${r.prefix}" is defined again: this one is ignored`, loc.registry(i)?.[0]);
      return false;
    });

    let aliases: Record<string, AliasConf> = {};
    if (doc['aliases'] !== undefined) {
      if (!isTable(doc['aliases'])) throw new ConfError('aliases must be a table ([aliases])', loc.key('aliases'));
      aliases = parseAliases(doc['aliases'], file, loc);
    }
    return { file, unqualifiedSearchRegistries, shortNameMode, credentialHelpers, registries: registries.sort(byPrefix), aliases, warnings };
  } catch (e) {
    if (e instanceof ConfError) throw fail(e.message, e.line);
    throw e;
  }
}

const byPrefix = (a: RegistryConf, b: RegistryConf): number => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0);

/** `base` updated by a later file (a drop-in): what the file sets replaces what base had. */
export function mergeRegistriesConf(base: RegistriesConf, f: RegistriesConfFile): RegistriesConf {
  const byPrefixMap = new Map(base.registries.map((r) => [r.prefix, r] as const));
  for (const r of f.registries) byPrefixMap.set(r.prefix, r);
  return {
    files: [...base.files, f.file],
    unqualifiedSearchRegistries: f.unqualifiedSearchRegistries ?? base.unqualifiedSearchRegistries,
    searchOrigin: f.unqualifiedSearchRegistries !== undefined ? f.file : base.searchOrigin,
    shortNameMode: f.shortNameMode ?? base.shortNameMode,
    credentialHelpers: f.credentialHelpers ?? base.credentialHelpers,
    registries: [...byPrefixMap.values()].sort(byPrefix),
    aliases: { ...base.aliases, ...f.aliases },
    warnings: [...base.warnings, ...f.warnings],
  };
}

/** One file alone (an explicit --registries-conf): what it leaves unset is unset, as podman. */
export function parseRegistriesConf(text: string, file: string): RegistriesConf {
  return mergeRegistriesConf(emptyRegistriesConf(file), parseRegistriesConfFile(text, file));
}

// ---------------------------------------------------------------------------
// Resolution

/** A fully-qualified name a short name may stand for, and why. */
export interface Candidate {
  /** Canonical: `docker.io/library/busybox:latest`. */
  readonly name: string;
  readonly ref: Reference;
  /** For messages: `alias in /etc/…/shortnames.conf`, `unqualified-search-registries in F`. */
  readonly origin: string;
}

function qualify(registry: string, name: string, origin: string): Candidate {
  const ref = parseReference(`${registry}/${name.trim()}`);
  return { name: formatReference(ref), ref, origin };
}

/** The alias of a short name, with the asked tag or digest carried over. */
export function resolveAlias(conf: RegistriesConf, name: string): Candidate | undefined {
  const { repo, tag, digest } = splitName(name);
  const a = Object.prototype.hasOwnProperty.call(conf.aliases, repo) ? conf.aliases[repo] : undefined;
  if (!a || a.value === null) return undefined;
  const ref = parseReference(`${a.value}${tag !== undefined ? ':' + tag : ''}${digest !== undefined ? '@' + digest : ''}`);
  return { name: formatReference(ref), ref, origin: `alias in ${a.file}` };
}

/** Checks a name and returns it parsed (throws EINVALIDREF). */
function checked(name: string): Reference {
  return parseReference(name);
}

/**
 * The names to pull, in order: a fully-qualified name itself; a short name's
 * alias alone if it has one, else one per unqualified-search-registry.
 */
export function pullCandidates(conf: RegistriesConf, name: string): Candidate[] {
  const ref = checked(name);
  if (!isShortName(name)) return [{ name: formatReference(ref), ref, origin: 'fully qualified' }];
  const alias = resolveAlias(conf, name);
  if (alias) return [alias];
  if (conf.unqualifiedSearchRegistries.length === 0) {
    throw new RuntimeError(
      `short name "${name}" did not resolve to an alias and no unqualified-search-registries are defined in ${conf.searchOrigin}: use a fully-qualified name (registry/repository)`,
      { code: 'ESHORTNAME' },
    );
  }
  const origin = `unqualified-search-registries in ${conf.searchOrigin}`;
  return conf.unqualifiedSearchRegistries.map((r) => qualify(r, name, origin));
}

/**
 * The names under which an image may already be in the store, in order: a
 * fully-qualified name itself; for a short name its alias, localhost/NAME,
 * each search registry, then docker.io/NAME (names recorded docker's way).
 */
export function localCandidates(conf: RegistriesConf, name: string): Candidate[] {
  const ref = checked(name);
  if (!isShortName(name)) return [{ name: formatReference(ref), ref, origin: 'fully qualified' }];
  const out: Candidate[] = [];
  const alias = resolveAlias(conf, name);
  if (alias) out.push(alias);
  out.push(qualify('localhost', name, 'a local image'));
  for (const r of conf.unqualifiedSearchRegistries) out.push(qualify(r, name, `unqualified-search-registries in ${conf.searchOrigin}`));
  out.push({ name: formatReference(ref), ref, origin: "docker's default registry" });
  const seen = new Set<string>();
  return out.filter((c) => !seen.has(c.name) && !!seen.add(c.name));
}

/** How much of `name` (domain/path) a prefix matches: its length, or -1. */
export function prefixMatch(name: string, prefix: string): number {
  if (prefix.startsWith('*.')) {
    const slash = name.indexOf('/');
    const domain = slash < 0 ? name : name.slice(0, slash);
    const host = domain.replace(/:\d+$/, '');
    return host.endsWith(prefix.slice(1)) ? domain.length : -1;
  }
  if (name === prefix) return prefix.length;
  return name.startsWith(prefix + '/') ? prefix.length : -1;
}

/** The [[registry]] with the longest prefix matching the reference, if any. */
export function findRegistry(conf: RegistriesConf, ref: Reference): RegistryConf | undefined {
  const name = repoName(ref);
  let best: RegistryConf | undefined;
  for (const r of conf.registries) if (prefixMatch(name, r.prefix) >= 0 && (!best || r.prefix.length > best.prefix.length)) best = r;
  return best;
}

/**
 * Where to pull a fully-qualified reference from, in order: the matching
 * [[registry]]'s mirrors (as pull-from-mirror allows), then its location;
 * the reference's own registry when no table matches. Throws EBLOCKED for a
 * blocked registry.
 */
export function pullSources(conf: RegistriesConf, ref: Reference): PullSource[] {
  const reg = findRegistry(conf, ref);
  if (!reg) return [{ host: ref.domain, path: ref.path }];
  const name = repoName(ref);
  if (reg.blocked) {
    throw new RuntimeError(`registry ${reg.prefix} is blocked in ${reg.file}: refusing to pull ${formatReference(ref)}`, { code: 'EBLOCKED' });
  }
  const digested = ref.digest !== undefined;
  const mirrors = reg.mirrorByDigestOnly ? (digested ? reg.mirrors : []) : reg.mirrors.filter((m) => m.pullFromMirror === 'all' || (m.pullFromMirror === 'digest-only') === digested);
  const n = prefixMatch(name, reg.prefix);
  const rewrite = (location: string, insecure: boolean, mirror: boolean): PullSource => {
    if (location === '') return { host: ref.domain, path: ref.path, insecure, mirror };
    const target = location + name.slice(n);
    const slash = target.indexOf('/');
    const what = `${mirror ? 'mirror ' : ''}location "${location}" of [[registry]] "${reg.prefix}" (${reg.file})`;
    if (slash < 0) throw new RuntimeError(`${what} leaves no repository for ${name}`, { code: 'EREGISTRIESCONF' });
    const host = target.slice(0, slash);
    let path = target.slice(slash + 1);
    if ((host === DEFAULT_DOMAIN || host === 'index.docker.io') && !path.includes('/')) path = `library/${path}`;
    if (!isValidPath(path)) throw new RuntimeError(`${what} maps ${name} to "${target}", not a repository`, { code: 'EREGISTRIESCONF' });
    return { host: host === 'index.docker.io' ? DEFAULT_DOMAIN : host, path, insecure, mirror };
  };
  return [...mirrors.map((m) => rewrite(m.location, m.insecure, true)), rewrite(reg.location, reg.insecure, false)];
}
