#!/usr/bin/env node
// Bundles the three entry points that sit on the container start path into
// one file each (dist/bundle/): the CLI, the container's init, and the spawn
// worker. Loading one file instead of ~60 modules saves tens of ms per Node
// start, and a container start pays for three of them. koffi (native) stays
// external.
'use strict';
const path = require('path');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..');
const entries = {
  mycontainer: 'dist/cli/main.js',
  'mycontainer-runtime': 'dist/cli/runtime.js',
  monitor: 'dist/engine/monitor-main.js',
  cri: 'dist/shim/server.js',
  kube: 'dist/orchestrator/server.js',
  'etcd-worker': 'dist/orchestrator/storage/etcd-worker.js',
};
// Code caches of the previous bundles (bin/lib/load.js writes them): stale now.
const out = path.join(root, 'dist', 'bundle');
if (require('fs').existsSync(out)) for (const f of require('fs').readdirSync(out)) if (f.endsWith('.cache')) require('fs').rmSync(path.join(out, f), { force: true });
for (const [name, entry] of Object.entries(entries)) {
  esbuild.buildSync({
    entryPoints: [path.join(root, entry)],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['koffi', 'better-sqlite3', 'etcd3'], // etcd3 reads its .proto files beside its own code
    outfile: path.join(root, 'dist', 'bundle', `${name}.js`),
    define: { 'process.env.MYCONTAINER_BUNDLED': '"1"' },
    logLevel: 'warning',
  });
}
