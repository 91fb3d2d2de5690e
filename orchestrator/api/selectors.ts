// Label and field selectors, as `kubectl get -l` and `--field-selector`
// send them (pure).

export type Requirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | '!exists' };

/** "app=web,tier!=db,env in (a,b),!legacy,release" → requirements; throws on bad syntax. */
export function parseLabelSelector(text: string): Requirement[] {
  const out: Requirement[] = [];
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) parts.push(cur);
  for (const raw of parts) {
    const p = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p))) out.push({ key: m[1] as string, op: m[2] as 'in' | 'notin', values: (m[3] as string).split(',').map((v) => v.trim()).filter(Boolean) });
    else if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/.exec(p))) out.push({ key: m[1] as string, op: m[2] === '!=' ? 'notin' : 'in', values: [m[3] as string] });
    else if ((m = /^!([\w./-]+)$/.exec(p))) out.push({ key: m[1] as string, op: '!exists' });
    else if ((m = /^([\w./-]+)$/.exec(p))) out.push({ key: m[1] as string, op: 'exists' });
    else throw new Error(`unable to parse requirement: ${JSON.stringify(p)}`);
  }
  return out;
}

export function matchesLabels(reqs: readonly Requirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    switch (r.op) {
      case 'exists': return has;
      case '!exists': return !has;
      case 'in': return has && r.values.includes(l[r.key] as string);
      case 'notin': return !has || !r.values.includes(l[r.key] as string);
    }
  });
}

/** "metadata.name=web,status.phase!=Running" → a predicate over the object's fields. */
export function parseFieldSelector(text: string): (obj: unknown) => boolean {
  const reqs = text.split(',').map((s) => s.trim()).filter(Boolean).map((p) => {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(p);
    if (!m) throw new Error(`invalid field selector: ${JSON.stringify(p)}`);
    return { path: (m[1] as string).split('.'), neg: m[2] === '!=', value: m[3] as string };
  });
  return (obj) => reqs.every((r) => {
    const v = r.path.reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), obj);
    const s = v === undefined || v === null ? '' : String(v);
    return r.neg ? s !== r.value : s === r.value;
  });
}

/** A Kubernetes selector object ({matchLabels, matchExpressions}) or a plain map → requirements. */
export function selectorRequirements(sel: unknown): Requirement[] {
  if (!sel || typeof sel !== 'object') return [];
  const s = sel as { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
  if (!('matchLabels' in s) && !('matchExpressions' in s)) return Object.entries(sel as Record<string, string>).map(([key, v]) => ({ key, op: 'in', values: [v] }));
  const out: Requirement[] = Object.entries(s.matchLabels ?? {}).map(([key, v]) => ({ key, op: 'in' as const, values: [v] }));
  for (const e of s.matchExpressions ?? []) {
    const op = e.operator === 'In' ? 'in' : e.operator === 'NotIn' ? 'notin' : e.operator === 'Exists' ? 'exists' : '!exists';
    out.push(op === 'in' || op === 'notin' ? { key: e.key, op, values: e.values ?? [] } : { key: e.key, op });
  }
  return out;
}
