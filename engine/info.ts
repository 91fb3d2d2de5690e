// docker version and docker info: the front end, the runtime and the host
// as the engine sees them.

import * as os from 'node:os';
import { readLayout } from '../runtime/cgroups/detect';
import type { ContentStore } from '../images/store';
import { ContainerStore, liveStatus, type Paths } from './containers';

export function versionInfo(): Record<string, string> {
  const pkg = require('../../package.json') as { version: string };
  return { Version: pkg.version, ApiVersion: '1.41', Runtime: 'mycontainer-runtime', OciRuntimeSpec: '1.2.1', NodeVersion: process.version, Os: process.platform, Arch: process.arch, Kernel: os.release() };
}

export function engineInfo(p: Paths, images: ContentStore): Record<string, unknown> {
  const all = new ContainerStore(p).all();
  const st = all.map(liveStatus);
  return {
    Containers: all.length,
    ContainersRunning: st.filter((s) => s === 'running').length,
    ContainersPaused: st.filter((s) => s === 'paused').length,
    ContainersStopped: st.filter((s) => s === 'exited' || s === 'created').length,
    Images: images.listImages().length,
    StorageDriver: 'overlay',
    LoggingDriver: 'cri (k8s-file)',
    CgroupDriver: readLayout().driver,
    NetworkPlugins: ['bridge', 'host-local', 'portmap', 'loopback'],
    Root: p.root,
    RunRoot: p.runroot,
    KernelVersion: os.release(),
    NCPU: os.cpus().length,
    MemTotal: os.totalmem(),
  };
}
