// Liveness, readiness and startup probes, as kubelet runs them: exec (CRI
// ExecSync in the container), httpGet (2xx-3xx from the pod's IP) and
// tcpSocket (a connection opens), every periodSeconds after
// initialDelaySeconds, each with its timeout; a result flips after
// successThreshold successes or failureThreshold failures in a row. The
// startup probe holds the other two back until it succeeds. The agent asks
// each second what the probes say; a probe runs in the background and
// never holds the pod's sync.

import * as http from 'node:http';
import * as net from 'node:net';

export interface Probe {
  exec?: { command: string[] };
  httpGet?: { path?: string; port: number | string; host?: string; scheme?: string; httpHeaders?: { name: string; value: string }[] };
  tcpSocket?: { port: number | string; host?: string };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

export type ProbeKind = 'startup' | 'liveness' | 'readiness';

interface State {
  nextAt: number;
  running: boolean;
  successes: number;
  failures: number;
  /** undefined until the first verdict. */
  ok: boolean | undefined;
  lastError: string;
}

export interface ProbeTarget {
  containerId: string;
  podIp: string | undefined;
  /** Named ports of the container ("http" → 8080). */
  ports: { name?: string; containerPort: number }[];
  startedAt: number;
  execSync: (cmd: string[], timeoutSeconds: number) => Promise<number>;
}

export class Prober {
  private readonly states = new Map<string, State>();

  /**
   * What the probes of one container say now, starting those that are due:
   * started (startup probe passed, or none), ready, alive (false: kill it).
   */
  check(t: ProbeTarget, probes: Partial<Record<ProbeKind, Probe>>): { started: boolean; ready: boolean; alive: boolean; why: string } {
    const startup = probes.startup ? this.poll(t, 'startup', probes.startup) : { ok: true as boolean | undefined, lastError: '' };
    const started = startup.ok === true;
    if (!started) {
      // A startup probe that has failed for good kills the container, as a liveness one would.
      return { started, ready: false, alive: startup.ok !== false, why: startup.ok === false ? `Startup probe failed: ${startup.lastError}` : '' };
    }
    const live = probes.liveness ? this.poll(t, 'liveness', probes.liveness) : undefined;
    const ready = probes.readiness ? this.poll(t, 'readiness', probes.readiness).ok === true : true;
    return { started, ready, alive: live?.ok !== false, why: live?.ok === false ? `Liveness probe failed: ${live.lastError}` : '' };
  }

  /** Forgets a container's probes (it is gone). */
  forget(containerId: string): void {
    for (const k of this.states.keys()) if (k.startsWith(`${containerId}/`)) this.states.delete(k);
  }

  private poll(t: ProbeTarget, kind: ProbeKind, p: Probe): State {
    const key = `${t.containerId}/${kind}`;
    let s = this.states.get(key);
    if (!s) {
      s = { nextAt: t.startedAt + (p.initialDelaySeconds ?? 0) * 1000, running: false, successes: 0, failures: 0, ok: kind === 'liveness' ? true : undefined, lastError: '' };
      this.states.set(key, s);
    }
    const st = s;
    if (!st.running && Date.now() >= st.nextAt) {
      st.running = true;
      const period = (p.periodSeconds ?? 10) * 1000;
      void runProbe(t, p).then((error) => {
        if (error === null) {
          st.successes++;
          st.failures = 0;
          if (st.successes >= (kind === 'readiness' ? p.successThreshold ?? 1 : 1)) st.ok = true;
        } else {
          st.failures++;
          st.successes = 0;
          st.lastError = error;
          if (st.failures >= (p.failureThreshold ?? 3)) st.ok = false;
        }
      }).finally(() => {
        st.running = false;
        st.nextAt = Date.now() + period;
      });
    }
    return st;
  }
}

function portOf(t: ProbeTarget, port: number | string): number {
  if (typeof port === 'number') return port;
  const n = t.ports.find((p) => p.name === port)?.containerPort;
  return n ?? Number(port);
}

/** One probe: null when it passed, else why not. */
export async function runProbe(t: ProbeTarget, p: Probe): Promise<string | null> {
  const timeout = (p.timeoutSeconds ?? 1) * 1000;
  try {
    if (p.exec) {
      const code = await t.execSync(p.exec.command, p.timeoutSeconds ?? 1);
      return code === 0 ? null : `command ${JSON.stringify(p.exec.command)} exited with ${code}`;
    }
    const host = p.httpGet?.host ?? p.tcpSocket?.host ?? t.podIp;
    if (!host) return 'the pod has no IP yet';
    if (p.httpGet) {
      const g = p.httpGet;
      const port = portOf(t, g.port);
      return await new Promise<string | null>((resolve) => {
        const req = http.get({ host, port, path: g.path ?? '/', timeout, headers: Object.fromEntries((g.httpHeaders ?? []).map((h) => [h.name, h.value])) }, (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          resolve(code >= 200 && code < 400 ? null : `HTTP probe failed with statuscode: ${code}`);
        });
        req.on('timeout', () => req.destroy(new Error(`timeout after ${timeout} ms`)));
        req.on('error', (e) => resolve(`Get "http://${host}:${port}${g.path ?? '/'}": ${e.message}`));
      });
    }
    if (p.tcpSocket) {
      const port = portOf(t, p.tcpSocket.port);
      return await new Promise<string | null>((resolve) => {
        const s = net.connect({ host, port, timeout });
        s.on('connect', () => {
          s.destroy();
          resolve(null);
        });
        s.on('timeout', () => {
          s.destroy();
          resolve(`dial tcp ${host}:${port}: i/o timeout`);
        });
        s.on('error', (e) => resolve(`dial tcp ${host}:${port}: ${e.message}`));
      });
    }
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
