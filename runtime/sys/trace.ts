// The trace hook: every syscall, cgroup write and hook run can be reported with
// a one-line note of what it does and which config field asked for it. With
// `--debug` the CLI installs a sink that prints these lines; in the container's
// init they travel to the runtime as DEBUG frames.

export type TraceKind = 'syscall' | 'cgroup' | 'file' | 'exec' | 'hook' | 'step';

export interface TraceEvent {
  kind: TraceKind;
  /** The call as written in C, e.g. `mount("proc", "/rootfs/proc", "proc", MS_NOSUID, NULL)`. */
  call: string;
  /** `= 0`, `= 12`, or `= -1 EPERM`. */
  result: string;
  /** Why it is done: usually the config field that asked for it. */
  why?: string | undefined;
}

export type TraceSink = (event: TraceEvent) => void;

let sink: TraceSink | undefined;

export function setTraceSink(fn: TraceSink | undefined): void {
  sink = fn;
}

export function tracing(): boolean {
  return sink !== undefined;
}

export function trace(event: TraceEvent): void {
  if (sink) sink(event);
}

/** One readable line for a trace event. */
export function formatTrace(e: TraceEvent): string {
  const head = e.kind === 'syscall' ? '' : `[${e.kind}] `;
  const why = e.why ? `  # ${e.why}` : '';
  return `${head}${e.call}${e.result ? ' ' + e.result : ''}${why}`;
}
