'use strict';
// Loads a bundle (dist/bundle/*.js) as the main module with V8's code cache
// beside it (X.js.<hash>.cache): compiling the ~1 MB bundles costs ~50 ms of CPU at
// every start, and the CLI, the runtime and each container's monitor start
// often. The cache is written at the first exit that lacks one (or whose one
// V8 rejected: another source, another node), atomically; where it cannot be
// written (a read-only install, a non-root user) the bundle just compiles.
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const Module = require('module');

module.exports = function loadBundle(file) {
  const source = fs.readFileSync(file, 'utf8');
  // Keyed by the file's identity (inode, size, mtime): V8 checks only the
  // source's length before it trusts a cache, and a sha1 of the 1.5 MB
  // source cost 6 ms of every start. A rebuild writes a new file.
  const st = fs.statSync(file);
  const cacheFile = `${file}.${st.ino.toString(36)}-${st.size.toString(36)}-${Math.floor(st.mtimeMs).toString(36)}.cache`;
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
  const m = new Module(file, null);
  m.filename = file;
  m.paths = Module._nodeModulePaths(path.dirname(file));
  require.main = m;
  process.mainModule = m;
  if (cachedData === undefined || script.cachedDataRejected) {
    process.once('exit', () => {
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      try {
        fs.writeFileSync(tmp, script.createCachedData());
        fs.renameSync(tmp, cacheFile);
      } catch {
        try {
          fs.rmSync(tmp, { force: true });
        } catch {
          // nothing to clean
        }
      }
    });
  }
  script.runInThisContext().call(m.exports, m.exports, (id) => m.require(id), m, file, path.dirname(file));
  m.loaded = true;
};

// As a script: `node load.js BUNDLE ARGS...` (how the monitor is started).
if (require.main === module) {
  const file = path.resolve(process.argv[2]);
  process.argv.splice(1, 2, file);
  module.exports(file);
}
