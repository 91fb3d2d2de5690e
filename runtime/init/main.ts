// Entry point of the container's init process (spawned by the runtime's
// main thread inside the new namespaces, see runtime/README.md). Kept small: it loads only what the
// init needs, so that this second Node start costs as little as possible.

import { formatTrace } from '../sys/trace';
import { setTraceSink } from '../sys/trace';
import { messageOf } from '../sys/errors';
import { InitChannel } from './protocol';
import { execInContainer, setupContainer } from './setup';

const ch = new InitChannel();
process.on('uncaughtException', fail);

function fail(e: unknown): never {
  const code = typeof e === 'object' && e && 'code' in e ? String((e as { code: unknown }).code) : 'EINIT';
  ch.send({ t: 'error', msg: messageOf(e), code });
  // After `created` nobody listens on the channel: say it on stderr, like runc.
  process.stderr.write(`mycontainer init: ${messageOf(e)}\n`);
  process.exit(127);
}

try {
  const first = ch.recv();
  if (!first) process.exit(1); // the runtime died before sending the plan
  if (first.t === 'go') throw new Error('init: expected a plan, got go');
  if (first.plan.debug) setTraceSink((e) => ch.send({ t: 'debug', line: formatTrace(e) }));
  if (first.t === 'plan') setupContainer(first.plan, ch);
  else execInContainer(first.plan, ch);
} catch (e) {
  fail(e);
}
