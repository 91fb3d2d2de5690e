// The orchestrator for tests: `mycontainer kube server` started as a user
// would (bin/mycontainer), on a free port, with its own data dir; and the
// real kubectl binaries, called by path.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { FRONTEND } from './bundle';

/** kubectl by version: the google-cloud-sdk ones, and Debian's 1.20 that setup.sh takes out of its package. */
export const KUBECTL: Record<string, string> = {
  '1.20': '/usr/local/lib/mycontainer/kubectl-1.20',
  '1.27': '/usr/lib/google-cloud-sdk/bin/kubectl.1.27',
  '1.33': '/usr/lib/google-cloud-sdk/bin/kubectl.1.33',
};

export function kubectlMissing(v: string): string | false {
  const p = KUBECTL[v];
  return p && fs.existsSync(p) ? false : `kubectl ${v} is not installed at ${p} (scripts/setup.sh puts it there)`;
}

export interface KubeServerProcess {
  dataDir: string;
  kubeconfig: string;
  port: number;
  proc: ChildProcess;
  log: () => string;
  stop(): Promise<void>;
}

/**
 * Starts `mycontainer kube server` on DATA_DIR (a new temp dir if none); resolves once it serves.
 * Without --container-runtime-endpoint it is an API-only server (--disable-agent) unless `o.ownRuntime`:
 * then it runs its own CRI server, which the caller points at a test store (--root, --runroot).
 */
export async function startKube(dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-kube-')), port = 0, extra: string[] = [], o: { ownRuntime?: boolean } = {}): Promise<KubeServerProcess> {
  if (!extra.includes('--container-runtime-endpoint') && !o.ownRuntime) extra = [...extra, '--disable-agent'];
  const logFile = path.join(dataDir, 'server.log');
  const from = fs.existsSync(logFile) ? fs.statSync(logFile).size : 0; // a restart appends
  const out = fs.openSync(logFile, 'a');
  const proc = spawn(process.execPath, [FRONTEND, 'kube', 'server', '--data-dir', dataDir, '--https-listen-port', String(port), ...extra], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const log = (): string => fs.readFileSync(logFile).subarray(from).toString('utf8');
  const deadline = Date.now() + 30000;
  let m: RegExpExecArray | null = null;
  while (!(m = /serving the Kubernetes API on https:\/\/[^:]+:(\d+)/.exec(log()))) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`kube server did not start:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    dataDir,
    kubeconfig: path.join(dataDir, 'kubeconfig.yaml'),
    port: Number(m[1]),
    proc,
    log,
    stop: async () => {
      if (proc.exitCode === null) {
        await new Promise<void>((resolve) => {
          proc.once('exit', () => resolve());
          proc.kill('SIGTERM');
        });
      }
      // The server takes its iptables rules out when it stops; make sure, had it died instead.
      const { removeRules } = require('../../orchestrator/node/proxy') as typeof import('../../orchestrator/node/proxy');
      const { proxyId } = require('../../orchestrator/server') as typeof import('../../orchestrator/server');
      removeRules(proxyId(dataDir));
      // and its dnsmasq, and the directory it served from
      const run = `/run/mycontainer-kube-${proxyId(dataDir)}`;
      try {
        process.kill(Number(fs.readFileSync(`${run}/dnsmasq.pid`, 'utf8')), 'SIGKILL');
      } catch {
        // not running
      }
      fs.rmSync(run, { recursive: true, force: true });
      // the bridge of its own pod network, if it ran its own runtime
      spawnSync('ip', ['link', 'del', `mck${proxyId(dataDir)}`], { stdio: 'ignore' });
    },
  };
}

export interface KubectlResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs kubectl VERSION against the server, with its admin kubeconfig. */
export function kubectl(v: string, k: { kubeconfig: string }, args: string[], input?: string): KubectlResult {
  const r = spawnSync(KUBECTL[v] as string, ['--kubeconfig', k.kubeconfig, ...args], { encoding: 'utf8', input, timeout: 60000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/** Polls `fn` every 250 ms until it returns a value; fails naming `what` (and `detail()`, e.g. the server's log) after `ms`. */
export async function until<T>(what: string, fn: () => T | undefined, ms = 60000, detail?: () => string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${detail ? `:\n${detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
