// The final word of an exec or attach on the error stream: a metav1.Status.
// From v4.channel.k8s.io on it is JSON, and a non-zero exit carries its code
// (reason NonZeroExitCode, cause ExitCode); before v4 the stream carries only
// a failure's message, as text, and nothing on success (kubelet's
// v1WriteStatusFunc), so older clients never learn an exit code.

export interface StatusCause { reason?: string; message?: string }

/** metav1.Status, with its JSON field names and order. */
export interface Status {
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { causes: StatusCause[] };
  code?: number;
}

export const success = (): Status => ({ metadata: {}, status: 'Success' });

export function nonZeroExit(exitCode: number): Status {
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: exit status ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

/** apierrors.NewInternalError: what kubelet reports when exec or attach itself failed. */
export function internalError(message: string): Status {
  return {
    metadata: {},
    status: 'Failure',
    message: `Internal error occurred: ${message}`,
    reason: 'InternalError',
    details: { causes: [{ message }] },
    code: 500,
  };
}

/** The error stream's bytes for this status under the negotiated protocol version (1–5); null: write nothing. */
export function encodeStatus(st: Status, version: number): Buffer | null {
  if (version >= 4) return Buffer.from(JSON.stringify(st));
  return st.status === 'Success' ? null : Buffer.from(st.message ?? 'error');
}
