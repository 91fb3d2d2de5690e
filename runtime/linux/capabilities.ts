// Capabilities: the five sets of `process.capabilities` as bit masks, and the
// order in which they are applied right before execve(2).

import { CAPABILITIES, PR, PR_CAP_AMBIENT_CLEAR_ALL, PR_CAP_AMBIENT_RAISE } from '../sys/constants';
import { RuntimeError } from '../sys/errors';
import type { ProgramBuilder } from '../sys/program';

export interface CapabilityPlan {
  /** Masks as hex strings, so the plan stays JSON. */
  bounding: string;
  effective: string;
  permitted: string;
  inheritable: string;
  ambient: string;
}

const capIndex = new Map<string, number>(CAPABILITIES.map((c, i) => [c, i]));

let knownLastCap: number | undefined;

/** The highest capability the running kernel knows (read once: planning asks for every name of every set). */
export function lastCap(): number {
  if (knownLastCap === undefined) {
    try {
      knownLastCap = Number(require('node:fs').readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
    } catch {
      knownLastCap = CAPABILITIES.length - 1;
    }
  }
  return knownLastCap;
}

function mask(names: readonly string[] | undefined, field: string, warnings: string[]): bigint {
  let m = 0n;
  for (const name of names ?? []) {
    const i = capIndex.get(name.toUpperCase());
    if (i === undefined) throw new RuntimeError(`${field}: unknown capability "${name}"`, { code: 'EINVAL' });
    if (i > lastCap()) {
      warnings.push(`${field}: ${name} is not known to this kernel; ignored`);
      continue;
    }
    m |= 1n << BigInt(i);
  }
  return m;
}

export function planCapabilities(
  caps: { bounding?: string[]; effective?: string[]; permitted?: string[]; inheritable?: string[]; ambient?: string[] } | undefined,
  warnings: string[],
): CapabilityPlan {
  const f = 'process.capabilities';
  const hex = (v: bigint): string => '0x' + v.toString(16);
  const permitted = mask(caps?.permitted, `${f}.permitted`, warnings);
  const inheritable = mask(caps?.inheritable, `${f}.inheritable`, warnings);
  let ambient = mask(caps?.ambient, `${f}.ambient`, warnings);
  // The kernel raises an ambient capability only if it is both permitted and
  // inheritable. runc skips the others silently (its own `spec` lists an
  // ambient set with no inheritable one), so we drop them at plan time, quietly.
  ambient &= permitted & inheritable;
  return {
    bounding: hex(mask(caps?.bounding, `${f}.bounding`, warnings)),
    effective: hex(mask(caps?.effective, `${f}.effective`, warnings)),
    permitted: hex(permitted),
    inheritable: hex(inheritable),
    ambient: hex(ambient),
  };
}

export function capNames(hexMask: string): string[] {
  const m = BigInt(hexMask);
  return CAPABILITIES.filter((_, i) => (m >> BigInt(i)) & 1n);
}

/** Drops from the bounding set what the plan does not keep. Needs CAP_SETPCAP, so it runs before setuid. */
export function emitDropBounding(b: ProgramBuilder, plan: CapabilityPlan, last: number): void {
  const keep = BigInt(plan.bounding);
  for (let i = 0; i <= last; i++) {
    if ((keep >> BigInt(i)) & 1n) continue;
    b.prctl(PR.CAPBSET_DROP, i, 0, `PR_CAPBSET_DROP, ${CAPABILITIES[i] ?? i}`, { why: 'process.capabilities.bounding' });
  }
}


/** Sets effective, permitted and inheritable, then raises the ambient ones. Runs after setuid. */
export function emitApplyCapabilities(b: ProgramBuilder, plan: CapabilityPlan): void {
  b.capset(BigInt(plan.effective), BigInt(plan.permitted), BigInt(plan.inheritable), { why: 'process.capabilities.{effective,permitted,inheritable}' });
  b.prctl(PR.CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 'PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL', { why: 'process.capabilities.ambient' });
  const amb = BigInt(plan.ambient);
  for (let i = 0; i < CAPABILITIES.length; i++) {
    if (!((amb >> BigInt(i)) & 1n)) continue;
    b.prctl(PR.CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i, `PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, ${CAPABILITIES[i]}`, { why: 'process.capabilities.ambient' });
  }
}
