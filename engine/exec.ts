// docker exec: a second process in a running container, through the
// runtime, with the user named as the container's /etc/passwd and
// /etc/group have it, and --privileged's capabilities.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../runtime/sys/errors';
import { liveStatus, type Paths } from './containers';
import { runtimeContext } from './lifecycle';
import { runningContainer } from './manage';
import { ALL_CAPS } from './spec';

export interface ExecRequest {
  args: string[];
  tty: boolean;
  detach: boolean;
  env: string[];
  workdir?: string | undefined;
  /** docker's -u: name or uid, with an optional :group */
  user?: string | undefined;
  privileged: boolean;
}

/** Runs REQ in the running container REF; answers the process's exit status. */
export async function execInContainer(p: Paths, ref: string, req: ExecRequest): Promise<number> {
  const c = runningContainer(p, ref);
  if (liveStatus(c) === 'paused') throw new RuntimeError(`cannot exec in container ${c.name}: it is paused, unpause it first`, { code: 'EINVAL' });
  let user: string | undefined;
  if (req.user !== undefined) {
    const { resolveUser } = require('../images/bundle') as typeof import('../images/bundle');
    const rootfs = path.join(p.bundle(c.id), 'rootfs');
    const read = (f: string): string => {
      try {
        return fs.readFileSync(path.join(rootfs, f), 'utf8');
      } catch {
        return '';
      }
    };
    const u = resolveUser(req.user, read('etc/passwd'), read('etc/group'));
    user = `${u.uid}:${u.gid}`;
  }
  const { exec } = require('../runtime/exec') as typeof import('../runtime/exec');
  return exec(runtimeContext(p), {
    id: c.id,
    args: req.args,
    tty: req.tty,
    detach: req.detach,
    env: req.env,
    cwd: req.workdir,
    user,
    caps: req.privileged ? ALL_CAPS : [],
    additionalGids: [],
  });
}
