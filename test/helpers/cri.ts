// The CRI server under test: `mycontainer cri` on a store of its own (an
// engine store with the test images loaded), a CNI conf dir with a bridge of
// its own, and the real crictl from the critest kit. cleanup() takes down
// every pod, the server, the bridge, and what the engine helper cleans.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { FRONTEND, REPO, type CliResult } from './bundle';
import { startEngine, waitFor, type Engine } from './engine';

export const KIT = path.resolve(REPO, '..', 'shared', 'tools', 'critest');
export const CRICTL = path.join(KIT, 'bin', 'crictl');

export function crictlMissing(): string | null {
  if (!fs.existsSync(CRICTL)) return `needs crictl from the critest kit at ${CRICTL} (not in a user's clone)`;
  return null;
}

export interface Cri {
  engine: Engine;
  socket: string;
  bridge: string;
  subnetPrefix: string;
  logDir: string;
  work: string;
  crictl(args: string[], opts?: { timeoutMs?: number; input?: string }): CliResult;
  /** A pod config file for crictl runp (with the test cgroup parent and a log dir). */
  podConfig(name: string, extra?: Record<string, unknown>): string;
  containerConfig(name: string, c: Record<string, unknown>): string;
  start(): void;
  stop(signal?: NodeJS.Signals): void;
  server: ChildProcess | null;
  serverLog(): string;
  cleanup(): void;
}

export function startCri(name: string, opts: { registriesConf?: string } = {}): Cri {
  const engine = startEngine(`cri-${name}`);
  const work = fs.mkdtempSync(path.join(engine.root, '..', 'cri-'));
  const n = process.pid % 200;
  const bridge = `mccri${process.pid % 100000}`;
  const subnetPrefix = `10.123.${n}`;
  const netd = path.join(work, 'net.d');
  fs.mkdirSync(netd);
  fs.writeFileSync(path.join(netd, '10-test.conflist'), JSON.stringify({
    cniVersion: '0.4.0', name: `cri-test-${process.pid}`,
    plugins: [
      { type: 'bridge', bridge, isGateway: true, ipMasq: true, hairpinMode: true, ipam: { type: 'host-local', dataDir: path.join(work, 'ipam'), ranges: [[{ subnet: `${subnetPrefix}.0/24` }]], routes: [{ dst: '0.0.0.0/0' }] } },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  }));
  const socket = path.join(engine.runroot, 'cri.sock');
  const logDir = path.join(work, 'logs');
  const logFile = path.join(work, 'server.log');
  const c: Cri = {
    engine, socket, bridge, subnetPrefix, logDir, work, server: null,
    crictl: (args, opts = {}) => {
      const r = spawnSync(CRICTL, ['--runtime-endpoint', `unix://${socket}`, '--image-endpoint', `unix://${socket}`, '--timeout', '60s', ...args], {
        encoding: 'utf8', timeout: opts.timeoutMs ?? 90000, input: opts.input, stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      });
      return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.signal ? `\n(killed by ${r.signal})` : '') };
    },
    podConfig: (pod, extra = {}) => {
      const f = path.join(work, `pod-${pod}.json`);
      fs.writeFileSync(f, JSON.stringify({
        metadata: { name: pod, namespace: 'test', uid: `uid-${pod}`, attempt: 0 },
        hostname: pod,
        log_directory: path.join(logDir, pod),
        linux: { cgroup_parent: engine.cgroupParent },
        ...extra,
      }));
      return f;
    },
    containerConfig: (ctr, cfg) => {
      const f = path.join(work, `ctr-${ctr}.json`);
      fs.writeFileSync(f, JSON.stringify({ metadata: { name: ctr }, log_path: `${ctr}.log`, ...cfg }));
      return f;
    },
    start: () => {
      const out = fs.openSync(logFile, 'a');
      const extra = opts.registriesConf ? ['--registries-conf', opts.registriesConf] : [];
      c.server = spawn(FRONTEND, ['--root', engine.root, '--runroot', engine.runroot, 'cri', '--socket', socket, '--cni-conf-dir', netd, '--default-cgroup-parent', engine.cgroupParent, ...extra], { stdio: ['ignore', out, out], detached: true });
      fs.closeSync(out);
      waitFor('the CRI socket', () => (fs.existsSync(socket) && c.crictl(['version']).status === 0 ? true : undefined), 20000);
    },
    stop: (signal = 'SIGTERM') => {
      const s = c.server;
      if (!s || s.exitCode !== null) return;
      s.kill(signal);
      // our event loop is blocked here: look at /proc, not at the child's 'exit' event
      const gone = (): boolean => {
        try {
          return fs.readFileSync(`/proc/${s.pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') === true;
        } catch {
          return true;
        }
      };
      waitFor('the CRI server to exit', () => (gone() ? true : undefined), 10000);
      c.server = null;
    },
    serverLog: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
    cleanup: () => {
      try {
        if (!c.server) c.start();
        for (const id of c.crictl(['pods', '-q']).stdout.split('\n').filter(Boolean)) c.crictl(['rmp', '-f', id]);
      } catch {
        // the server does not come up: the kills below
      }
      try {
        c.stop('SIGKILL');
      } catch {
        // gone
      }
      // pause processes do not name the store on their command line
      const sandboxes = path.join(engine.root, 'cri', 'sandboxes');
      for (const d of fs.existsSync(sandboxes) ? fs.readdirSync(sandboxes) : []) {
        try {
          const pid = (JSON.parse(fs.readFileSync(path.join(sandboxes, d, 'sandbox.json'), 'utf8')) as { pausePid: number }).pausePid;
          if (pid > 0) process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      // the containers' processes, in their cgroups under the test's parent (a monitor killed above leaves them)
      for (const h of ['', ...fs.readdirSync('/sys/fs/cgroup')]) {
        const top = path.join('/sys/fs/cgroup', h, engine.cgroupParent);
        const walk = (d: string): void => {
          let entries: fs.Dirent[] = [];
          try {
            entries = fs.readdirSync(d, { withFileTypes: true });
          } catch {
            return;
          }
          for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
          try {
            for (const pid of fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
          } catch {
            // no procs file, or gone
          }
        };
        walk(top);
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300); // the killed leave their cgroups
      spawnSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
      engine.cleanup();
    },
  };
  try {
    c.start();
  } catch (e) {
    c.cleanup();
    throw e;
  }
  return c;
}
