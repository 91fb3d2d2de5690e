// How the engine commands print: docker's column tables and its Go-template
// --format.

/** Columns padded to the widest cell, three spaces apart, as docker's tables. */
export function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]! + 3))).join('').trimEnd()).join('\n') + '\n';
}

/** Go-template-ish --format: `{{.State.Status}}`, `{{.NetworkSettings.IPAddress}}`, `{{json .State}}`. */
export function formatTemplate(tpl: string, doc: unknown): string {
  return tpl.replace(/\{\{\s*(json\s+)?\.([\w.]*)\s*\}\}/g, (_m, json: string | undefined, field: string) => {
    let v: unknown = doc;
    for (const k of field.split('.').filter(Boolean)) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    if (json) return JSON.stringify(v ?? null);
    if (v === undefined || v === null) return '<no value>';
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  });
}
