// Runs every benchmark in sequence: `make bench` (node dist/bench/run.js).
// The runtime benchmark always; the image pull benchmark once it is built
// (dist/bench/pull.js). Each runs as its own process with inherited output;
// the exit status is non-zero if any failed.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const benches = ['runtime', 'pull', 'engine', 'cri', 'kube'];

function main(): number {
  let failed = 0;
  for (const name of benches) {
    const file = path.join(__dirname, `${name}.js`);
    if (!fs.existsSync(file)) {
      process.stderr.write(`bench: ${name}: ${path.relative(process.cwd(), file)} is not built, skipped\n`);
      continue;
    }
    process.stderr.write(`\n=== bench: ${name} ===\n`);
    const r = spawnSync(process.execPath, [file], { stdio: 'inherit' });
    if (r.status !== 0) {
      process.stderr.write(`bench: ${name} failed (${r.signal ?? `status ${r.status}`})\n`);
      failed++;
    }
  }
  return failed === 0 ? 0 : 1;
}

process.exitCode = main();
