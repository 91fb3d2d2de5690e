// Manifests and image configs: the OCI and Docker schema2 forms, parsed and
// checked, and platform selection in an index / manifest list.

import { RuntimeError } from '../runtime/sys/errors';
import { validateDigest } from './reference';

export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

/** What we send in Accept when fetching a manifest. */
export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.dockerList, MediaType.ociManifest, MediaType.dockerManifest];

export interface Platform {
  architecture: string;
  os: string;
  variant?: string | undefined;
  'os.version'?: string | undefined;
  'os.features'?: string[] | undefined;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[] | undefined;
  annotations?: Record<string, string> | undefined;
  platform?: Platform | undefined;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string | undefined;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string> | undefined;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string | undefined;
  manifests: Descriptor[];
  annotations?: Record<string, string> | undefined;
}

export interface HistoryEntry {
  created?: string | undefined;
  created_by?: string | undefined;
  author?: string | undefined;
  comment?: string | undefined;
  empty_layer?: boolean | undefined;
}

export interface ContainerConfig {
  User?: string | undefined;
  ExposedPorts?: Record<string, object> | undefined;
  Env?: string[] | null | undefined;
  Entrypoint?: string[] | null | undefined;
  Cmd?: string[] | null | undefined;
  Volumes?: Record<string, object> | null | undefined;
  WorkingDir?: string | undefined;
  Labels?: Record<string, string> | null | undefined;
  StopSignal?: string | undefined;
}

export interface ImageConfig {
  created?: string | undefined;
  author?: string | undefined;
  architecture: string;
  os: string;
  variant?: string | undefined;
  config?: ContainerConfig | undefined;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[] | undefined;
}

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; index: ImageIndex }
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest };

function bad(what: string, why: string): RuntimeError {
  return new RuntimeError(`invalid ${what}: ${why}`, { code: 'EMANIFEST' });
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function checkDescriptor(v: unknown, what: string): Descriptor {
  if (!isObj(v)) throw bad(what, 'descriptor is not an object');
  if (typeof v['mediaType'] !== 'string') throw bad(what, 'descriptor has no mediaType');
  if (typeof v['digest'] !== 'string') throw bad(what, 'descriptor has no digest');
  validateDigest(v['digest']);
  if (typeof v['size'] !== 'number' || !Number.isSafeInteger(v['size']) || v['size'] < 0) throw bad(what, 'descriptor has a bad size');
  return v as unknown as Descriptor;
}

/** Parses a manifest body by its media type (from the body, else from Content-Type). */
export function parseManifest(body: Buffer, contentType?: string): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw bad('manifest', `not JSON (${(e as Error).message})`);
  }
  if (!isObj(doc)) throw bad('manifest', 'not an object');
  if (doc['schemaVersion'] !== 2) throw bad('manifest', `schemaVersion ${String(doc['schemaVersion'])} is not supported (only 2)`);
  const mt = typeof doc['mediaType'] === 'string' ? doc['mediaType'] : (contentType ?? '').split(';')[0]!.trim();
  const isIndex = mt === MediaType.ociIndex || mt === MediaType.dockerList || (mt === '' && Array.isArray(doc['manifests']));
  if (isIndex) {
    if (!Array.isArray(doc['manifests'])) throw bad('index', 'no manifests');
    doc['manifests'].forEach((d, i) => checkDescriptor(d, `index entry ${i}`));
    return { kind: 'index', mediaType: mt || MediaType.ociIndex, index: doc as unknown as ImageIndex };
  }
  if (mt !== '' && mt !== MediaType.ociManifest && mt !== MediaType.dockerManifest) throw bad('manifest', `unsupported media type "${mt}"`);
  checkDescriptor(doc['config'], 'manifest config');
  if (!Array.isArray(doc['layers'])) throw bad('manifest', 'no layers');
  doc['layers'].forEach((d, i) => checkDescriptor(d, `manifest layer ${i}`));
  return { kind: 'manifest', mediaType: mt || MediaType.ociManifest, manifest: doc as unknown as ImageManifest };
}

export function parseImageConfig(body: Buffer): ImageConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw bad('image config', `not JSON (${(e as Error).message})`);
  }
  if (!isObj(doc)) throw bad('image config', 'not an object');
  const rootfs = doc['rootfs'];
  if (!isObj(rootfs) || !Array.isArray(rootfs['diff_ids'])) throw bad('image config', 'no rootfs.diff_ids');
  for (const d of rootfs['diff_ids']) validateDigest(String(d));
  return doc as unknown as ImageConfig;
}

const archMap: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** The host's platform in OCI terms. */
export function hostPlatform(): Platform {
  return { os: 'linux', architecture: archMap[process.arch] ?? process.arch };
}

/** Parses `os/arch[/variant]` (`linux/arm64/v8`); `arch` alone means linux. */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length === 1) return { os: 'linux', architecture: parts[0]! };
  if (parts.length > 3 || parts.some((p) => p === '')) throw new RuntimeError(`invalid platform "${s}" (want os/arch[/variant])`, { code: 'EINVAL' });
  return { os: parts[0]!, architecture: parts[1]!, variant: parts[2] };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}`;
}

function normVariant(p: Platform): string | undefined {
  if (p.architecture === 'arm64' && (p.variant === undefined || p.variant === 'v8')) return 'v8';
  return p.variant;
}

/** Does `candidate` run on `want`? Variant must match when `want` names one. */
export function platformMatches(want: Platform, candidate: Platform): boolean {
  if (candidate.os !== want.os || candidate.architecture !== want.architecture) return false;
  if (want.variant === undefined) return true;
  return normVariant(candidate) === normVariant(want);
}

/** Picks the index entry for a platform; attestation manifests are skipped. */
export function selectManifest(index: ImageIndex, want: Platform): Descriptor {
  const candidates = index.manifests.filter((d) => d.platform !== undefined && d.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest');
  const match = candidates.find((d) => platformMatches(want, d.platform!));
  if (match) return match;
  const have = candidates.map((d) => formatPlatform(d.platform!)).join(', ') || 'none';
  throw new RuntimeError(`no manifest for platform ${formatPlatform(want)} in the image index (have: ${have})`, { code: 'ENOPLATFORM' });
}
