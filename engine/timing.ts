// MYCONTAINER_TIMING=1: each step of run/start prints its time since the
// process started, on stderr (the monitor's goes to its monitor.log), to
// see where a container start spends its time.

// Read at each call: the Node monitor learns it from its job (monitor-main.ts), after loading.
export function mark(step: string): void {
  if (process.env['MYCONTAINER_TIMING'] !== undefined) process.stderr.write(`timing: ${process.title.startsWith('mycontainer-monitor') ? 'monitor' : 'cli'} ${step} at ${performance.now().toFixed(1)} ms (${new Date().toISOString().slice(17, 23)})\n`);
}
