// What this host lets the containers we make have, read from /proc: the
// open-files limit we hold, the capabilities in our bounding set, the
// lowest oom_score_adj we may set. The front end and the CRI server both
// build configs from these.

import * as fs from 'node:fs';
import { capsFromMask } from './spec';

export function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/** Our hard RLIMIT_NOFILE: a container gets at most that. */
export function hostNofileHard(): number {
  const limits = readOr('/proc/self/limits', '');
  if (!limits) return 1024;
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(limits);
  return m && m[1] !== 'unlimited' ? Number(m[1]) : 1048576;
}

/** The capabilities we hold (CapBnd): --privileged and ALL mean these. */
export function hostBoundingCaps(): string[] {
  return capsFromMask(/^CapBnd:\s+([0-9a-f]+)/m.exec(readOr('/proc/self/status', ''))?.[1] ?? '0');
}

/** The lowest oom_score_adj we may set: our own without CAP_SYS_RESOURCE (a lower one is EACCES). */
export function minOomScoreAdj(): number {
  const eff = BigInt(`0x${/^CapEff:\s+([0-9a-f]+)/m.exec(readOr('/proc/self/status', ''))?.[1] ?? '0'}`);
  if ((eff >> 24n) & 1n) return -1000;
  return Number(readOr('/proc/self/oom_score_adj', '0').trim()) || 0;
}
