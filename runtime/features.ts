// `mycontainer features`: what this runtime supports, in the shape of the
// runtime-spec features document (features-schema.json), built from the same
// tables the runtime uses.

import type { Features } from './spec/generated/features';
import { CAPABILITIES, MOUNT_OPTIONS, NAMESPACES, PROPAGATION_OPTIONS } from './sys/constants';
import { SECCOMP_ACTIONS, SECCOMP_FLAGS, SECCOMP_OPERATORS } from './linux/seccomp';

export function features(): Features {
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: '1.2.1',
    hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    mountOptions: [...Object.keys(MOUNT_OPTIONS), ...Object.keys(PROPAGATION_OPTIONS)].sort(),
    linux: {
      namespaces: (Object.keys(NAMESPACES) as (keyof typeof NAMESPACES)[]).sort(),
      capabilities: [...CAPABILITIES],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false, rdma: false },
      seccomp: {
        enabled: true,
        actions: [...SECCOMP_ACTIONS],
        operators: [...SECCOMP_OPERATORS],
        archs: ['SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'],
        knownFlags: Object.keys(SECCOMP_FLAGS) as (keyof typeof SECCOMP_FLAGS)[],
        supportedFlags: Object.keys(SECCOMP_FLAGS) as (keyof typeof SECCOMP_FLAGS)[],
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: false } },
    },
    annotations: { 'org.opencontainers.runc.version': 'mycontainer (runc-compatible CLI)' },
  };
}
