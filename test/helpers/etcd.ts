// A real etcd for tests: Debian's etcd-server, one member on free loopback
// ports with a temp data dir, stopped and removed by stop().

import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './registry';

export const ETCD = '/usr/bin/etcd';

export function etcdMissing(): string | false {
  return fs.existsSync(ETCD) ? false : `${ETCD} is not installed (Debian's etcd-server; scripts/setup.sh installs it)`;
}

export interface EtcdProcess {
  /** Its client URL, http://127.0.0.1:PORT. */
  endpoint: string;
  dataDir: string;
  readonly proc: ChildProcess;
  log: () => string;
  /** Stops it (SIGTERM) and removes its data dir. */
  stop(): Promise<void>;
  /** Stops it, keeping its data. */
  pause(): Promise<void>;
  /** Starts it again on the same ports and data. */
  resume(): Promise<void>;
}

function healthy(endpoint: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${endpoint}/health`, { timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"health":"true"')));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

/** Starts etcd; resolves once /health answers. */
export async function startEtcd(): Promise<EtcdProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-etcd-'));
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'etcd.log');
  const [client, peer] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${client}`;
  const log = (): string => fs.readFileSync(logFile, 'utf8');
  let proc: ChildProcess;
  const kill = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      await new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      });
    }
  };
  const run = async (): Promise<void> => {
    const out = fs.openSync(logFile, 'a');
    proc = spawn(ETCD, [
      '--name', 'test', '--data-dir', dataDir,
      '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `test=http://127.0.0.1:${peer}`, '--logger', 'zap', '--log-level', 'warn',
    ], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    const deadline = Date.now() + 20000;
    while (!(await healthy(endpoint))) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        await kill();
        throw new Error(`etcd did not start on ${endpoint}:\n${log()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async (): Promise<void> => {
    await kill();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await run();
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    endpoint,
    dataDir,
    get proc() {
      return proc;
    },
    log,
    stop,
    pause: kill,
    resume: run,
  };
}
