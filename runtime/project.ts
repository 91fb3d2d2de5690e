// Files that ship with the project rather than the compiled code (the
// native/ builds, the CRI's api.proto): found from this module's directory
// upwards, so that dist/<layer>/, dist/bundle/ and the sources all find them.

import * as fs from 'node:fs';
import * as path from 'node:path';

export function projectFile(rel: string): string | null {
  for (let d = __dirname; d !== path.dirname(d); d = path.dirname(d)) {
    const p = path.join(d, rel);
    if (fs.existsSync(p)) return p;
  }
  return null;
}
