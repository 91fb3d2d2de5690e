// `kubectl logs` (pods/NAME/log): the API server reads the container's log
// where kubelet's layout puts it (POD_LOG_DIR/NS_NAME_UID/CONTAINER/N.log,
// N the attempt; --previous is N-1) and turns the CRI log format
// ("TIME STREAM P|F MESSAGE" per line, written by mycontainer-monitor)
// back into the program's output. --follow keeps reading until the
// container is gone or the client hangs up; --tail and --timestamps as
// kubectl's.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ServerResponse } from 'node:http';
import type { KubeObject } from '../api/objects';
import { ApiError } from '../api/objects';

export interface LogOptions {
  container?: string | undefined;
  previous: boolean;
  follow: boolean;
  tailLines?: number | undefined;
  timestamps: boolean;
}

/** One CRI log line → what the program wrote (partial lines get no newline). */
export function criLine(line: string, timestamps: boolean): string {
  const m = /^(\S+) (stdout|stderr) (P|F) ?(.*)$/.exec(line);
  if (!m) return '';
  const text = m[4] as string;
  return `${timestamps ? `${m[1]} ` : ''}${text}${m[3] === 'F' ? '\n' : ''}`;
}

export function logFile(logRoot: string, pod: KubeObject, o: LogOptions): string {
  const spec = pod.spec as { containers: { name: string }[] };
  const names = spec.containers.map((c) => c.name);
  const name = pod.metadata.name as string;
  const container = o.container ?? (names.length === 1 ? names[0] : undefined);
  if (!container) throw new ApiError(400, 'BadRequest', `a container name must be specified for pod ${name}, choose one of: [${names.join(' ')}]`);
  if (!names.includes(container)) throw new ApiError(400, 'BadRequest', `container ${container} is not valid for pod ${name}`);
  const statuses = ((pod.status as { containerStatuses?: { name: string; restartCount: number; containerID?: string }[] } | undefined)?.containerStatuses ?? []);
  const st = statuses.find((s) => s.name === container);
  if (!st?.containerID) throw new ApiError(400, 'BadRequest', `container "${container}" in pod "${name}" is waiting to start`);
  const attempt = st.restartCount - (o.previous ? 1 : 0);
  if (attempt < 0) throw new ApiError(400, 'BadRequest', `previous terminated container "${container}" in pod "${name}" not found`);
  const dir = path.join(logRoot, `${String(pod.metadata.namespace)}_${name}_${String(pod.metadata.uid)}`, container);
  return path.join(dir, `${attempt}.log`);
}

/** Writes the log to `res`; with follow, until `alive()` says the container is gone or the client leaves. */
export function streamLog(res: ServerResponse, file: string, o: LogOptions, alive: () => boolean): void {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    // not written yet
  }
  let offset = Buffer.byteLength(text);
  let lines = text.split('\n');
  const partial = lines.pop() ?? '';
  offset -= Buffer.byteLength(partial);
  if (o.tailLines !== undefined) lines = o.tailLines === 0 ? [] : lines.slice(-o.tailLines);
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
  res.write(lines.map((l) => criLine(l, o.timestamps)).join(''));
  if (!o.follow) {
    res.end();
    return;
  }
  let rest = '';
  const timer = setInterval(() => {
    let fd = -1;
    try {
      fd = fs.openSync(file, 'r');
      const size = fs.fstatSync(fd).size;
      if (size > offset) {
        const buf = Buffer.alloc(size - offset);
        fs.readSync(fd, buf, 0, buf.length, offset);
        offset = size;
        const chunk = (rest + buf.toString('utf8')).split('\n');
        rest = chunk.pop() ?? '';
        res.write(chunk.map((l) => criLine(l, o.timestamps)).join(''));
      }
    } catch {
      // rotated or not there yet
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
    if (!alive()) {
      clearInterval(timer);
      res.end();
    }
  }, 200);
  res.on('close', () => clearInterval(timer));
}
