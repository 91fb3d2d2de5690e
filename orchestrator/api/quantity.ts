// Kubernetes quantities (pure).

/** "500m" → 0.5, "2" → 2 (CPU); "64Mi" → 67108864, "1G" → 1e9 (bytes). */
export function quantity(q: string | number | undefined): number | undefined {
  if (q === undefined) return undefined;
  if (typeof q === 'number') return q;
  const m = /^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti|)$/.exec(q.trim());
  if (!m) return undefined;
  const f: Record<string, number> = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };
  return Number(m[1]) * (f[m[2] as string] as number);
}

