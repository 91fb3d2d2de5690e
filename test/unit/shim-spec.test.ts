// The CRI server's pure parts: a pod's pause config, a container's OCI
// config from its CRI config, capabilities, seccomp profiles, the
// :authority rewriting of the socket's front door. No root, no kernel.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { baseSpec } from '../../images/bundle';
import { ALL_CAPS, DOCKER_DEFAULT_CAPS } from '../../engine/spec';
import { pauseSpec, NS_CONTAINER, NS_NODE, NS_POD, NS_TARGET } from '../../shim/sandbox';
import { containerSpec, criCapabilities, seccompFor, type ContainerSpecInput } from '../../shim/container-spec';
import { AuthorityRewriter, encodeLiterals } from '../../shim/authority';
import type { PodSandboxConfig__Output } from '../../shim/proto/generated/runtime/v1/PodSandboxConfig';
import type { ContainerConfig__Output } from '../../shim/proto/generated/runtime/v1/ContainerConfig';
import type { SandboxRecord } from '../../shim/sandbox-store';

function pod(ns: { network?: number; pid?: number; ipc?: number } = {}, over: Partial<PodSandboxConfig__Output> = {}): PodSandboxConfig__Output {
  return {
    metadata: { name: 'web', namespace: 'default', uid: 'u1', attempt: 0 },
    hostname: 'web-0', log_directory: '/var/log/pods/web', dns_config: null, port_mappings: [], labels: {}, annotations: {},
    linux: {
      cgroup_parent: '/kubepods/pod-u1', sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' }, overhead: null, resources: null,
      security_context: {
        namespace_options: { network: ns.network ?? NS_POD, pid: ns.pid ?? NS_CONTAINER, ipc: ns.ipc ?? NS_POD, target_id: '', userns_options: null },
        selinux_options: null, run_as_user: null, readonly_rootfs: false, supplemental_groups: [], privileged: false, seccomp_profile_path: '', run_as_group: null, seccomp: null, apparmor: null, supplemental_groups_policy: 0,
      },
    },
    windows: null,
    ...over,
  } as PodSandboxConfig__Output;
}

test('pauseSpec: the pod namespaces by mode, the netns by path, hostname, sysctls, cgroup, no capabilities', () => {
  const s = pauseSpec(pod(), 'abc', '/run/pause-rootfs', '/run/netns/abc');
  const types = s.linux!.namespaces!.map((n) => n.type);
  assert.deepEqual(types, ['mount', 'pid', 'ipc', 'uts', 'network']);
  assert.equal(s.linux!.namespaces!.find((n) => n.type === 'network')!.path, '/run/netns/abc');
  assert.equal(s.hostname, 'web-0');
  assert.deepEqual(s.linux!.sysctl, { 'net.ipv4.ip_unprivileged_port_start': '0' });
  assert.equal(s.linux!.cgroupsPath, '/kubepods/pod-u1/abc');
  assert.deepEqual(s.process!.args, ['/pause']);
  assert.deepEqual(s.process!.user, { uid: 65535, gid: 65535 });
  assert.deepEqual(s.process!.capabilities, { bounding: [], effective: [], permitted: [] });
  assert.deepEqual(s.root, { path: '/run/pause-rootfs', readonly: true });
  // hostNetwork, host pid and ipc: none of those namespaces, and the node's own name
  const host = pauseSpec(pod({ network: NS_NODE, pid: NS_NODE, ipc: NS_NODE }), 'abc', '/r', null);
  assert.deepEqual(host.linux!.namespaces!.map((n) => n.type), ['mount']);
  assert.equal(host.hostname, undefined);
  // no hostname given: none set (the uts namespace keeps the node's, as /etc/hostname says)
  assert.equal(pauseSpec(pod({}, { hostname: '' }), 'abc', '/r', '/n').hostname, undefined);
  // no cgroup parent: the server's default
  assert.equal(pauseSpec(pod({}, { linux: { ...pod().linux!, cgroup_parent: '' } }), 'abc', '/r', '/n', '/mycontainer-test/x').linux!.cgroupsPath, '/mycontainer-test/x/abc');
});

function ctr(over: Partial<ContainerConfig__Output> = {}, sc: Record<string, unknown> = {}): ContainerConfig__Output {
  return {
    metadata: { name: 'app', attempt: 0 }, image: { image: 'busybox', annotations: {}, user_specified_image: '', runtime_handler: '', image_ref: '' },
    command: [], args: [], working_dir: '', envs: [], mounts: [], devices: [], labels: {}, annotations: { a: 'b' }, log_path: 'app.log',
    stdin: false, stdin_once: false, tty: false,
    linux: {
      resources: null,
      security_context: {
        capabilities: null, privileged: false, namespace_options: null, selinux_options: null, run_as_user: null, run_as_group: null,
        run_as_username: '', readonly_rootfs: false, supplemental_groups: [], apparmor_profile: '', seccomp_profile_path: '',
        no_new_privs: false, masked_paths: [], readonly_paths: [], seccomp: null, apparmor: null, supplemental_groups_policy: 0, ...sc,
      },
    },
    windows: null, CDI_devices: [], stop_signal: 0,
    ...over,
  } as unknown as ContainerConfig__Output;
}

function input(cfg: ContainerConfig__Output, p = pod()): ContainerSpecInput {
  const sandbox = { id: 'sb1', config: p, pausePid: 4242, netns: '/run/netns/sb1' } as unknown as SandboxRecord;
  return {
    id: 'c1', config: cfg, sandbox, spec: baseSpec(),
    sandboxFiles: { hostname: '/sb/hostname', hosts: '/sb/hosts', resolvConf: '/sb/resolv.conf' },
    targetPid: 777, devices: [], nofileHard: 20000, minOomScoreAdj: 0, readProfile: () => '{"defaultAction":"SCMP_ACT_ALLOW"}',
    boundingCaps: ALL_CAPS.filter((c) => c !== 'CAP_SYS_RESOURCE'),
  };
}

test('containerSpec: joins the pod by path, its /etc files, cgroup under the pod, kubelet mounts with propagation', () => {
  const s = containerSpec(input(ctr({
    mounts: [
      { container_path: '/data', host_path: '/var/lib/kubelet/x', readonly: true, selinux_relabel: false, propagation: 0 } as never,
      { container_path: '/shared', host_path: '/mnt/s', readonly: false, selinux_relabel: false, propagation: 2 } as never,
    ],
  })));
  const ns = Object.fromEntries(s.linux!.namespaces!.map((n) => [n.type, n.path ?? '(new)']));
  assert.deepEqual(ns, { mount: '(new)', pid: '(new)', ipc: '/proc/4242/ns/ipc', uts: '/proc/4242/ns/uts', network: '/run/netns/sb1' });
  assert.equal(s.linux!.cgroupsPath, '/kubepods/pod-u1/c1');
  assert.equal(s.hostname, undefined, 'the pod\'s uts namespace has it');
  const m = (d: string) => s.mounts!.find((x) => x.destination === d)!;
  assert.equal(m('/etc/resolv.conf').source, '/sb/resolv.conf');
  assert.deepEqual(m('/data').options, ['rbind', 'rprivate', 'ro']);
  assert.deepEqual(m('/shared').options, ['rbind', 'rshared', 'rw']);
  assert.equal(s.linux!.rootfsPropagation, 'shared');
  assert.equal(s.annotations!['io.kubernetes.cri.sandbox-id'], 'sb1');
  assert.equal(s.annotations!['a'], 'b');
  assert.deepEqual(s.process!.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 20000, soft: 20000 }]);
  // a shared pid namespace is the pause's; TARGET is the target's
  assert.equal(containerSpec(input(ctr(), pod({ pid: NS_POD }))).linux!.namespaces!.find((n) => n.type === 'pid')!.path, '/proc/4242/ns/pid');
  const t = containerSpec(input(ctr({}, { namespace_options: { network: 0, pid: NS_TARGET, ipc: 0, target_id: 'x', userns_options: null } })));
  assert.equal(t.linux!.namespaces!.find((n) => n.type === 'pid')!.path, '/proc/777/ns/pid');
  // relative paths are refused
  assert.throws(() => containerSpec(input(ctr({ mounts: [{ container_path: 'rel', host_path: '/x', propagation: 0 } as never] }))), /must be absolute/);
});

test('containerSpec: security context and resources', () => {
  const s = containerSpec(input(ctr({
    linux: {
      resources: { cpu_period: '100000', cpu_quota: '50000', cpu_shares: '512', memory_limit_in_bytes: '67108864', oom_score_adj: '-998', cpuset_cpus: '0', cpuset_mems: '', hugepage_limits: [], unified: {}, memory_swap_limit_in_bytes: '0' },
      security_context: ctr({}, { readonly_rootfs: true, no_new_privs: true, masked_paths: ['/proc/x'], readonly_paths: ['/proc/y'], supplemental_groups: ['1234'], capabilities: { add_capabilities: ['NET_ADMIN'], drop_capabilities: ['KILL'], add_ambient_capabilities: [] } }).linux!.security_context,
    },
  } as never)));
  assert.equal(s.root!.readonly, true);
  assert.equal(s.process!.noNewPrivileges, true);
  assert.deepEqual(s.linux!.maskedPaths, ['/proc/x']);
  assert.deepEqual(s.linux!.readonlyPaths, ['/proc/y']);
  assert.ok(s.process!.capabilities!.bounding!.includes('CAP_NET_ADMIN'));
  assert.ok(!s.process!.capabilities!.bounding!.includes('CAP_KILL'));
  assert.deepEqual(s.linux!.resources!.cpu, { shares: 512, quota: 50000, period: 100000, cpus: '0' });
  assert.deepEqual(s.linux!.resources!.memory, { limit: 67108864 });
  assert.equal(s.process!.oomScoreAdj, 0, 'clamped to what we may set without CAP_SYS_RESOURCE');
  assert.equal(s.linux!.seccomp, undefined, 'unconfined when none is asked');
  // privileged: every capability we hold, no masks, every device
  const p = containerSpec(input(ctr({}, { privileged: true })));
  assert.equal(p.process!.capabilities!.bounding!.length, ALL_CAPS.length - 1);
  assert.equal(p.linux!.maskedPaths, undefined);
  assert.deepEqual(p.linux!.resources!.devices, [{ allow: true, access: 'rwm' }]);
});

test('criCapabilities: the default set, ALL as what we hold, add then drop', () => {
  assert.deepEqual(criCapabilities([], []), DOCKER_DEFAULT_CAPS);
  const held = ALL_CAPS.filter((c) => c !== 'CAP_SYS_RESOURCE');
  assert.deepEqual(criCapabilities(['ALL'], [], held), held);
  assert.deepEqual(criCapabilities(['NET_RAW'], ['ALL']), ['CAP_NET_RAW']);
  assert.ok(!criCapabilities([], ['chown']).includes('CAP_CHOWN'));
});

test('seccompFor: RuntimeDefault, Unconfined, Localhost, and the deprecated path forms', () => {
  const read = (): string => '{"defaultAction":"SCMP_ACT_ERRNO"}';
  assert.ok(seccompFor({ profile_type: 0, localhost_ref: '' }, '', false, read)!.syscalls!.length > 0);
  assert.equal(seccompFor({ profile_type: 1, localhost_ref: '' }, '', false, read), null);
  assert.deepEqual(seccompFor({ profile_type: 2, localhost_ref: '/p.json' }, '', false, read), { defaultAction: 'SCMP_ACT_ERRNO' });
  assert.ok(seccompFor(null, 'runtime/default', false, read));
  assert.deepEqual(seccompFor(null, 'localhost//p.json', false, read), { defaultAction: 'SCMP_ACT_ERRNO' });
  assert.equal(seccompFor(null, '', false, read), null);
  assert.equal(seccompFor({ profile_type: 0, localhost_ref: '' }, '', true, read), null, 'privileged: none');
  assert.throws(() => seccompFor({ profile_type: 2, localhost_ref: 'rel.json' }, '', false, read), /absolute/);
  assert.throws(() => seccompFor(null, 'bogus', false, read), /unknown seccomp profile/);
});

test('AuthorityRewriter: a socket path as :authority becomes localhost; other frames pass unchanged', () => {
  const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  const frame = (type: number, flags: number, stream: number, payload: Buffer): Buffer => {
    const h = Buffer.alloc(9);
    h.writeUIntBE(payload.length, 0, 3);
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(stream, 5);
    return Buffer.concat([h, payload]);
  };
  const settings = frame(4, 0, 0, Buffer.alloc(0));
  const block = encodeLiterals([{ name: ':method', value: 'POST' }, { name: ':authority', value: '/run/mycontainer/cri.sock' }, { name: ':path', value: '/runtime.v1.RuntimeService/Version' }]);
  const headers = frame(1, 0x4, 1, block);
  const rw = new AuthorityRewriter();
  // fed in awkward pieces, as a socket may deliver them
  const input = Buffer.concat([preface, settings, headers]);
  const out = Buffer.concat([rw.push(input.subarray(0, 10)), rw.push(input.subarray(10, 40)), rw.push(input.subarray(40))]);
  assert.ok(out.subarray(0, preface.length).equals(preface));
  assert.ok(out.subarray(preface.length, preface.length + settings.length).equals(settings));
  const rewritten = out.subarray(preface.length + settings.length);
  assert.ok(rewritten.includes(Buffer.from('localhost')));
  assert.ok(!rewritten.includes(Buffer.from('cri.sock')));
  assert.ok(rewritten.includes(Buffer.from('/runtime.v1.RuntimeService/Version')));
  assert.equal(rewritten[4]! & 0x4, 0x4, 'END_HEADERS kept');
});
