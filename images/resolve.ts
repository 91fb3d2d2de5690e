// Names → images through registries.conf: the one entry that the CLIs and a
// long-lived server (the CRI server) call in-process.
//
//   loadRegistriesConf(file?)      the default file and its drop-ins, or one file
//   findLocal(store, name, conf)   an image already in the store (short names
//                                  through aliases, localhost/ and the search
//                                  registries; IDs and digests too)
//   findOrPull(store, name, opts)  findLocal and/or pull, by pull policy; pulls
//                                  through mirrors, records under the asked name
//
// How names resolve is documented at the top of registries.ts. Nothing here
// keeps state between calls: each pull has its own registry client, so
// credentials given for one pull (`auth`, CRI's AuthConfig) and the tokens
// they earn serve that pull only.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, messageOf } from '../runtime/sys/errors';
import { fileCredentials, type CredentialLookup, type Credentials } from './auth';
import { findImage, type Image } from './image';
import type { Platform } from './manifest';
import { pull, type PullEvent } from './pull';
import { RegistryClient, RegistryError, type RegistryOptions } from './registry';
import {
  DEFAULT_REGISTRIES_CONF,
  DEFAULT_REGISTRIES_CONF_DIR,
  builtinRegistriesConf,
  isShortName,
  localCandidates,
  mergeRegistriesConf,
  parseRegistriesConf,
  parseRegistriesConfFile,
  pullCandidates,
  pullSources,
  type Candidate,
  type RegistriesConf,
} from './registries';

export type { RegistriesConf } from './registries';

export type PullPolicy = 'missing' | 'always' | 'never';

function readConf(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : messageOf(e);
    throw new RuntimeError(`cannot read registries.conf ${file}: ${why}`, { code: code ?? 'EREGISTRIESCONF', cause: e });
  }
}

/**
 * Reads registries.conf. `file` given: that file alone, which must exist.
 * Undefined: /etc/containers/registries.conf (the built-in defaults if it
 * does not exist), then /etc/containers/registries.conf.d/*.conf in name
 * order. `opts` moves the default paths (tests).
 */
export function loadRegistriesConf(file?: string, opts: { defaultFile?: string; dropInDir?: string } = {}): RegistriesConf {
  if (file !== undefined) return parseRegistriesConf(readConf(file), file);
  const main = opts.defaultFile ?? DEFAULT_REGISTRIES_CONF;
  let conf: RegistriesConf;
  if (fs.existsSync(main)) conf = parseRegistriesConf(readConf(main), main);
  else conf = builtinRegistriesConf();
  const dir = opts.dropInDir ?? DEFAULT_REGISTRIES_CONF_DIR;
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.conf')).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new RuntimeError(`cannot read ${dir}: ${messageOf(e)}`, { cause: e });
  }
  for (const n of names) {
    const f = path.join(dir, n);
    let st: fs.Stats;
    try {
      st = fs.statSync(f);
    } catch {
      continue; // removed meanwhile, or a dangling link
    }
    if (st.isDirectory()) continue;
    conf = mergeRegistriesConf(conf, parseRegistriesConfFile(readConf(f), f, { dropIn: true }));
  }
  return conf;
}

const HEX_ID = /^(?:sha256:)?[a-f0-9]{4,64}$/;

/**
 * An image already in the store. A short name is looked for under its alias,
 * localhost/NAME, each search registry, then docker.io/NAME; a
 * fully-qualified name as it is; an ID or digest (or a prefix of 4+ hex
 * digits) as `findImage` finds it. Throws ENOTFOUND naming where it looked.
 */
export function findLocal(store: import('./store').ContentStore, name: string, registries: RegistriesConf): Image {
  let candidates: Candidate[];
  try {
    candidates = localCandidates(registries, name);
  } catch (e) {
    // Not a reference (an uppercase ID, say): IDs and digests only.
    if ((e as RuntimeError).code === 'EINVALIDREF') return findImage(store, name);
    throw e;
  }
  for (const c of candidates) {
    try {
      return findImage(store, c.name);
    } catch (e) {
      if ((e as RuntimeError).code !== 'ENOTFOUND') throw e;
    }
  }
  if (HEX_ID.test(name)) {
    try {
      return findImage(store, name);
    } catch (e) {
      if ((e as RuntimeError).code !== 'ENOTFOUND') throw e;
    }
  }
  const looked = isShortName(name) ? ` (looked for ${candidates.map((c) => c.name).join(', ')})` : '';
  throw new RuntimeError(`image "${name}" not found${looked}`, { code: 'ENOTFOUND' });
}

export interface FindOrPullOptions {
  registries: RegistriesConf;
  /** missing: the local image if there is one; always: pull; never: the local image or ENOTFOUND. */
  policy: PullPolicy;
  /** Credentials per registry host (default: the auth files, auth.ts). */
  credentials?: CredentialLookup | undefined;
  /** Credentials for this pull only, for every source it tries (CRI's AuthConfig); override `credentials`. */
  auth?: Credentials | undefined;
  platform?: Platform | undefined;
  onEvent?: ((e: PullEvent) => void) | undefined;
  onWarning?: ((msg: string) => void) | undefined;
  /** Further client options: --insecure-registry hosts, user agent, retries. */
  registry?: Omit<RegistryOptions, 'credentials' | 'pullSources' | 'mirrors'> | undefined;
  /** Layers fetched at once (default 3). */
  concurrency?: number | undefined;
}

/** Errors after which the next candidate of a short name is tried (podman tries them all). */
function nextCandidateOk(e: unknown): boolean {
  if (e instanceof RegistryError) return e.code !== 'EDIGEST';
  const code = (e as RuntimeError).code;
  return code === 'EBLOCKED';
}

/**
 * The image `name` stands for, pulled if the policy says so. A pull goes
 * through registries.conf: a short name's alias or each search registry in
 * order (the first that serves it wins), each through its [[registry]]'s
 * mirrors then location. The image is recorded under the resolved name
 * (`registry.k8s.io/pause:3.9`), never a mirror's.
 */
export async function findOrPull(store: import('./store').ContentStore, name: string, opts: FindOrPullOptions): Promise<Image> {
  const conf = opts.registries;
  if (opts.policy !== 'always') {
    try {
      return findLocal(store, name, conf);
    } catch (e) {
      if ((e as RuntimeError).code !== 'ENOTFOUND') throw e;
      if (opts.policy === 'never') throw new RuntimeError(`${messageOf(e)}, and the pull policy is "never"`, { code: 'ENOTFOUND', cause: e });
    }
  }
  const candidates = pullCandidates(conf, name);
  const credentials: CredentialLookup = opts.auth !== undefined ? () => opts.auth : (opts.credentials ?? fileCredentials());
  const client = new RegistryClient({ ...opts.registry, credentials, pullSources: (ref) => pullSources(conf, ref) });
  const failures: { c: Candidate; e: unknown }[] = [];
  for (const c of candidates) {
    if (candidates.length > 1 || c.origin !== 'fully qualified') opts.onEvent?.({ kind: 'trying', ref: c.name, origin: c.origin });
    try {
      pullSources(conf, c.ref); // a blocked registry is refused before anything is asked
      const r = await pull(store, c.name, { registry: client, platform: opts.platform, concurrency: opts.concurrency, onEvent: opts.onEvent, onWarning: opts.onWarning });
      return findImage(store, r.name);
    } catch (e) {
      if (candidates.length === 1 || !nextCandidateOk(e)) throw e;
      failures.push({ c, e });
    }
  }
  const code = failures.every((f) => (f.e as RuntimeError).code === 'ENOTFOUND') ? 'ENOTFOUND' : ((failures[failures.length - 1]?.e as RuntimeError).code ?? 'EREGISTRY');
  throw new RuntimeError(`cannot pull "${name}" from any of ${failures.length} registries (${candidates[0]!.origin}): ${failures.map((f) => `${f.c.name}: ${messageOf(f.e)}`).join('; ')}`, { code });
}
