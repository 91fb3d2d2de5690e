// The seccomp profile `mycontainer spec` writes, in the spirit of docker's
// and podman's default: every syscall of the architecture is allowed except
// those that reach outside the container (kernel modules, keyrings, mounts,
// namespaces, clocks, tracing other processes, reboot...), which get EPERM.
// clone may not make namespaces, and clone3 answers ENOSYS so that libc
// falls back to clone, where the flags can be checked.

import type { Linux } from './generated/config';
import { SYSCALLS } from '../linux/syscalls.generated';

const DENIED = new Set([
  'acct', 'add_key', 'bpf', 'clock_adjtime', 'clock_settime', 'create_module', 'delete_module', 'finit_module',
  'fsconfig', 'fsmount', 'fsopen', 'fspick', 'get_kernel_syms', 'init_module', 'ioperm', 'iopl', 'kcmp',
  'kexec_file_load', 'kexec_load', 'keyctl', 'lookup_dcookie', 'mount', 'mount_setattr', 'move_mount',
  'name_to_handle_at', 'nfsservctl', 'open_by_handle_at', 'open_tree', 'perf_event_open', 'pivot_root',
  'process_vm_readv', 'process_vm_writev', 'ptrace', 'query_module', 'quotactl', 'quotactl_fd', 'reboot',
  'request_key', 'setns', 'settimeofday', 'swapoff', 'swapon', 'sysfs', '_sysctl', 'umount2', 'unshare',
  'uselib', 'userfaultfd', 'ustat', 'vm86', 'vm86old', 'clone', 'clone3',
  // as docker: the kernel log, hanging up the terminal, setting the clock (i386)
  'syslog', 'vhangup', 'stime',
]);

/** CLONE_NEWNS|CLONE_NEWCGROUP|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET, as docker masks. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;

export function defaultSeccompProfile(): NonNullable<Linux['seccomp']> {
  // The names of every architecture listed (i386 has mmap2, _llseek,
  // socketcall...), each looked up per architecture by the compiler.
  const names = new Set([...Object.keys(SYSCALLS.x86_64), ...Object.keys(SYSCALLS.x86), ...Object.keys(SYSCALLS.x32)]);
  const allowed = [...names].filter((n) => !DENIED.has(n)).sort();
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      { names: allowed as [string, ...string[]], action: 'SCMP_ACT_ALLOW' },
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
    ],
  };
}
