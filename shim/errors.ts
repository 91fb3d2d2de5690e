// Errors of the CRI server and their gRPC status codes, converted in one
// place (as containerd's errgrpc): every handler throws, the server maps.
// Messages name the RPC, the pod or container, and the cause.

import { status as Status } from '@grpc/grpc-js';
import { messageOf } from '../runtime/sys/errors';

export class CriError extends Error {
  constructor(readonly grpcCode: Status, message: string) {
    super(message);
    this.name = 'CriError';
  }
}

export const invalid = (msg: string): CriError => new CriError(Status.INVALID_ARGUMENT, msg);
export const notFound = (msg: string): CriError => new CriError(Status.NOT_FOUND, msg);
export const exists = (msg: string): CriError => new CriError(Status.ALREADY_EXISTS, msg);
export const precondition = (msg: string): CriError => new CriError(Status.FAILED_PRECONDITION, msg);
export const unimplemented = (msg: string): CriError => new CriError(Status.UNIMPLEMENTED, msg);

/** The library's error codes (errno names and our own) as gRPC codes. */
const BY_CODE: Record<string, Status> = {
  ENOENT: Status.NOT_FOUND,
  ENOTFOUND: Status.NOT_FOUND,
  EINVAL: Status.INVALID_ARGUMENT,
  EINVALIDREF: Status.INVALID_ARGUMENT,
  EEXIST: Status.ALREADY_EXISTS,
  EBUSY: Status.FAILED_PRECONDITION,
  EBLOCKED: Status.PERMISSION_DENIED,
  EAUTH: Status.UNAUTHENTICATED,
  ETIMEDOUT: Status.DEADLINE_EXCEEDED,
  EAGAIN: Status.RESOURCE_EXHAUSTED,
};

export function grpcStatusOf(e: unknown): { code: Status; details: string } {
  if (e instanceof CriError) return { code: e.grpcCode, details: e.message };
  const code = (e as { code?: unknown }).code;
  return { code: (typeof code === 'string' ? BY_CODE[code] : undefined) ?? Status.UNKNOWN, details: messageOf(e) };
}

/** Prefixes the operation to an error's message, keeping its code. */
export function during(op: string, e: unknown): Error {
  const { code, details } = grpcStatusOf(e);
  return new CriError(code, details.startsWith(op) ? details : `${op}: ${details}`);
}
