// Image pull benchmark: pull + unpack of a multi-layer image (≥ 200 MB
// uncompressed by default) from a local docker-registry, by mycontainer and
// by `skopeo copy docker://… oci:…` followed by `umoci unpack`, in one run.
//
//   node dist/bench/pull.js         (BENCH_N=3 runs each; BENCH_MB=220)
//
// The image: the busybox image of scripts/build-busybox-image.sh plus one
// layer per host directory (files from Debian packages: /usr/share/locale,
// /usr/share/doc, …) until BENCH_MB is reached, made with `umoci insert`
// (gzip). It is cached in /var/tmp/mycontainer-bench-pull/ by its directory
// list. The registry runs on 127.0.0.1 with its storage in a temp dir.
//
// Measured per tool, each run into a fresh store / layout:
//   wall     seconds from start to everything unpacked on disk
//   MB/s     compressed bytes pulled / wall, and uncompressed / wall
//   rss      peak RSS (/usr/bin/time -f %M; for skopeo+umoci the max of the two)
// Reported as mycontainer/baseline ratios. Targets (issue 3): ≥ 1.5× the
// throughput, peak RSS under 150 MB.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { startRegistry, skopeoPush } from '../test/helpers/registry';

const REPO = path.resolve(__dirname, '..', '..');
const MYCONTAINER = path.join(REPO, 'bin', 'mycontainer');
const BUILD = path.join(REPO, 'scripts', 'build-busybox-image.sh');
const TIME = '/usr/bin/time';
const N = Number(process.env['BENCH_N'] ?? 3);
const TARGET_MB = Number(process.env['BENCH_MB'] ?? 220);
const CACHE = '/var/tmp/mycontainer-bench-pull';
const CANDIDATES = [
  '/usr/share/locale',
  '/usr/share/doc',
  '/usr/share/man',
  '/usr/lib/python3',
  '/usr/share/perl',
  '/usr/share/i18n',
  '/usr/lib/x86_64-linux-gnu/perl',
  '/usr/bin',
  '/usr/lib/x86_64-linux-gnu',
];

function duBytes(dir: string): number {
  try {
    return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
  } catch {
    return 0;
  }
}

function pickDirs(): { dirs: string[]; bytes: number } {
  const dirs: string[] = [];
  let bytes = 0;
  for (const d of CANDIDATES) {
    if (bytes >= TARGET_MB * 1e6) break;
    if (!fs.existsSync(d) || dirs.some((x) => d.startsWith(x + '/'))) continue;
    const b = duBytes(d);
    if (b === 0) continue;
    dirs.push(d);
    bytes += b;
  }
  return { dirs, bytes };
}

/** The OCI layout of the bench image, built once per directory list. */
function benchImage(): { layout: string; dirs: string[] } {
  const { dirs } = pickDirs();
  const key = dirs.join(',').replace(/[^a-z0-9]+/gi, '_');
  const layout = path.join(CACHE, key);
  if (fs.existsSync(path.join(layout, 'index.json')) && fs.existsSync(path.join(layout, '.complete'))) return { layout, dirs };
  fs.rmSync(layout, { recursive: true, force: true });
  fs.mkdirSync(CACHE, { recursive: true });
  process.stderr.write(`bench: building the image (${dirs.join(', ')}) in ${layout}\n`);
  execFileSync(BUILD, [layout, 'latest'], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (const d of dirs) execFileSync('umoci', ['insert', '--image', `${layout}:latest`, d, d], { stdio: ['ignore', 'ignore', 'inherit'] });
  fs.writeFileSync(path.join(layout, '.complete'), '');
  return { layout, dirs };
}

interface Sample {
  wall: number;
  rssMB: number;
}

function timed(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Sample {
  const rssFile = path.join(os.tmpdir(), `bench-rss-${process.pid}`);
  const t0 = process.hrtime.bigint();
  const r = spawnSync(TIME, ['-o', rssFile, '-f', '%M', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.toString().trim()}`);
  const rssKB = Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop());
  fs.rmSync(rssFile, { force: true });
  return { wall, rssMB: rssKB / 1024 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root');
  const { layout, dirs } = benchImage();
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(fs.readFileSync(path.join(layout, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { layers: { size: number }[] };
  const compressed = manifest.layers.reduce((n, l) => n + l.size, 0);
  const reg = await startRegistry();
  const work = fs.mkdtempSync(path.join('/var/tmp', 'mc-bench-pull-'));
  try {
    await skopeoPush(layout, 'latest', `${reg.host}/bench:latest`);
    const ref = `${reg.host}/bench:latest`;
    const authFile = path.join(work, 'auth.json');
    fs.writeFileSync(authFile, '{"auths":{}}');
    const env = { ...process.env, REGISTRY_AUTH_FILE: authFile };
    const ours: Sample[] = [];
    const theirs: Sample[] = [];
    let uncompressed = 0;
    for (let i = 0; i < N; i++) {
      const store = path.join(work, `store-${i}`);
      ours.push(timed(MYCONTAINER, ['--root', store, 'pull', '--quiet', ref], env));
      if (i === 0) uncompressed = duBytes(path.join(store, 'snapshots'));
      fs.rmSync(store, { recursive: true, force: true });

      const oci = path.join(work, `oci-${i}`);
      const bundle = path.join(work, `bundle-${i}`);
      const a = timed('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${oci}:latest`], env);
      const b = timed('umoci', ['unpack', '--image', `${oci}:latest`, bundle]);
      theirs.push({ wall: a.wall + b.wall, rssMB: Math.max(a.rssMB, b.rssMB) });
      fs.rmSync(oci, { recursive: true, force: true });
      fs.rmSync(bundle, { recursive: true, force: true });
    }
    const o = { wall: median(ours.map((s) => s.wall)), rssMB: Math.max(...ours.map((s) => s.rssMB)) };
    const t = { wall: median(theirs.map((s) => s.wall)), rssMB: Math.max(...theirs.map((s) => s.rssMB)) };
    const mbps = (wall: number, bytes: number): number => bytes / 1e6 / wall;
    const rows = [
      ['', 'mycontainer', 'skopeo+umoci', 'ratio'],
      ['wall s (median)', o.wall.toFixed(2), t.wall.toFixed(2), (t.wall / o.wall).toFixed(2) + '× faster'],
      ['MB/s compressed', mbps(o.wall, compressed).toFixed(1), mbps(t.wall, compressed).toFixed(1), (t.wall / o.wall).toFixed(2)],
      ['MB/s unpacked', mbps(o.wall, uncompressed).toFixed(1), mbps(t.wall, uncompressed).toFixed(1), (t.wall / o.wall).toFixed(2)],
      ['peak RSS MB', o.rssMB.toFixed(1), t.rssMB.toFixed(1), (o.rssMB / t.rssMB).toFixed(2)],
    ];
    const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    process.stdout.write(`image: ${manifest.layers.length} layers, ${(compressed / 1e6).toFixed(0)} MB compressed, ${(uncompressed / 1e6).toFixed(0)} MB unpacked (${dirs.join(', ')}); ${N} runs each\n`);
    for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(w[i]! + 2)).join('').trimEnd() + '\n');
    const targetOk = t.wall / o.wall >= 1.5 && o.rssMB < 150;
    process.stdout.write(`target (≥1.5× throughput, RSS < 150 MB): ${targetOk ? 'met' : 'NOT met'}\n`);
    const results = path.join(REPO, 'bench', 'results');
    fs.mkdirSync(results, { recursive: true });
    const file = path.join(results, `pull-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`);
    fs.writeFileSync(file, JSON.stringify({ layers: manifest.layers.length, compressed, uncompressed, dirs, n: N, mycontainer: ours, baseline: theirs, ratio: { throughput: t.wall / o.wall, rss: o.rssMB / t.rssMB } }, null, 2) + '\n');
  } finally {
    await reg.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench pull: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
