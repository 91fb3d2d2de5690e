// Global options shared by every command, as runc names them.
export interface GlobalOptions {
  /** State directory for runtime containers (runc's --root). */
  root: string;
  /** Log file; errors are also written there (podman/conmon read it). */
  log?: string | undefined;
  logFormat: 'text' | 'json';
  debug: boolean;
}
