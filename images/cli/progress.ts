// Pull progress: on a terminal, one bar per layer redrawn in place; otherwise
// one plain line per layer state change (never per byte).

import type { PullEvent } from '../pull';

function short(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)}${units[i]}`;
}

const label: Record<string, string> = {
  waiting: 'Waiting',
  exists: 'Already exists',
  downloading: 'Downloading',
  verifying: 'Verifying',
  unpacking: 'Unpacking',
  done: 'Pull complete',
};

export function progressPrinter(out: NodeJS.WriteStream, tty: boolean): (e: PullEvent) => void {
  const order: string[] = [];
  const lines = new Map<string, string>();
  const lastStatus = new Map<string, string>();
  let drawn = 0;
  let last = 0;
  const redraw = (force: boolean): void => {
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    let s = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const d of order) s += `\x1b[2K${lines.get(d) ?? ''}\n`;
    drawn = order.length;
    out.write(s);
  };
  return (e) => {
    if (e.kind === 'trying') {
      out.write(`Trying to pull ${e.ref} (${e.origin})...\n`);
      return;
    }
    if (e.kind === 'resolved') {
      const from = e.source !== undefined ? ` from ${e.mirror ? 'mirror ' : ''}${e.source}` : '';
      out.write(`Pulling ${e.ref}${from} (${e.digest}, ${e.layers} layer${e.layers === 1 ? '' : 's'})\n`);
      return;
    }
    if (e.kind === 'done') {
      if (tty) redraw(true);
      out.write(`Digest: ${e.digest}\nImage: ${e.name} (${short(e.id)})\n`);
      return;
    }
    if (!lines.has(e.digest)) order.push(e.digest);
    const text = label[e.status] ?? e.status;
    if (tty) {
      let bar = '';
      if (e.status === 'downloading' && e.total > 0) {
        const width = 40;
        const fill = Math.min(width, Math.floor((e.current / e.total) * width));
        bar = ` [${'='.repeat(Math.max(0, fill - 1))}${fill > 0 ? '>' : ''}${' '.repeat(width - fill)}] ${humanSize(e.current)}/${humanSize(e.total)}`;
      }
      lines.set(e.digest, `${short(e.digest)}: ${text}${bar}`);
      redraw(e.status !== 'downloading');
    } else {
      lines.set(e.digest, text);
      if (lastStatus.get(e.digest) === e.status) return;
      lastStatus.set(e.digest, e.status);
      out.write(`${short(e.digest)}: ${text}${e.status === 'done' || e.status === 'exists' ? ` (${humanSize(e.total)})` : ''}\n`);
    }
  };
}
