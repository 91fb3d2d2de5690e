// Docker's documents of containers, networks and volumes, as `docker
// inspect` and `docker ps --format json` show them (and the Engine API
// answers them): built from the records, with the status derived.

import * as path from 'node:path';
import { liveStatus, type Container, type Paths } from './containers';
import type { Network } from './network';
import type { Volume } from './volumes';

/** docker's "2 minutes", "About an hour": how long ago ISO was. */
export function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 1) return 'Less than a second';
  if (s < 60) return s === 1 ? '1 second' : `${s} seconds`;
  const m = Math.round(s / 60);
  if (m < 60) return m === 1 ? 'About a minute' : `${m} minutes`;
  const h = Math.round(m / 60);
  if (h < 48) return h === 1 ? 'About an hour' : `${h} hours`;
  const d = Math.round(h / 24);
  if (d < 14) return `${d} days`;
  return `${Math.round(d / 7)} weeks`;
}

/** docker ps's STATUS column. */
export function statusText(c: Container, now = Date.now()): string {
  const s = liveStatus(c);
  switch (s) {
    case 'running':
      return `Up ${ago(c.state.startedAt, now)}`;
    case 'paused':
      return `Up ${ago(c.state.startedAt, now)} (Paused)`;
    case 'restarting':
      return `Restarting (${c.state.exitCode}) ${ago(c.state.finishedAt, now)} ago`;
    case 'exited':
      return c.state.finishedAt.startsWith('0001') ? 'Exited (0)' : `Exited (${c.state.exitCode}) ${ago(c.state.finishedAt, now)} ago`;
    case 'created':
      return 'Created';
    default:
      return s[0]!.toUpperCase() + s.slice(1);
  }
}

export function portsText(c: Container): string {
  return c.hostConfig.portBindings.map((b) => `${b.hostIp}:${b.hostPort}->${b.containerPort}/${b.protocol}`).join(', ');
}

/** The image's name as docker ps shows it: docker.io/library/ left out. */
export function shortImage(name: string): string {
  return name.replace(/^docker\.io\/(library\/)?/, '');
}

/** docker ps's COMMAND column: quoted, cut at 20 characters. */
export function commandText(c: Container): string {
  const s = c.config.args.map((x) => (/\s/.test(x) ? `'${x}'` : x)).join(' ');
  return `"${s.length > 20 ? s.slice(0, 19) + '…' : s}"`;
}

/** Whether `ps` without -a lists it. */
export function isActive(c: Container): boolean {
  return ['running', 'paused', 'restarting'].includes(liveStatus(c));
}

/** One container as `docker ps --format json` has it. */
export function containerSummary(c: Container, opts: { noTrunc: boolean }): Record<string, unknown> {
  return {
    ID: opts.noTrunc ? c.id : c.id.slice(0, 12), Image: shortImage(c.config.image), Command: commandText(c), CreatedAt: c.created, RunningFor: ago(c.created), Status: statusText(c),
    State: liveStatus(c), Ports: portsText(c), Names: c.name, Labels: c.config.labels,
  };
}

/** `docker inspect` of a container. */
export function inspectContainer(p: Paths, c: Container): Record<string, unknown> {
  const s = liveStatus(c);
  return {
    Id: c.id,
    Created: c.created,
    Path: c.config.args[0] ?? '',
    Args: c.config.args.slice(1),
    State: {
      Status: s,
      Running: s === 'running' || s === 'paused',
      Paused: s === 'paused',
      Restarting: s === 'restarting',
      OOMKilled: c.state.oomKilled,
      Dead: s === 'dead',
      Pid: s === 'running' || s === 'paused' ? c.state.pid : 0,
      ExitCode: c.state.exitCode,
      Error: c.state.error,
      StartedAt: c.state.startedAt,
      FinishedAt: c.state.finishedAt,
    },
    Image: c.config.imageId,
    LogPath: p.log(c.id),
    Name: `/${c.name}`,
    RestartCount: c.state.restartCount,
    Driver: 'overlay',
    HostConfig: {
      AutoRemove: c.hostConfig.autoRemove,
      RestartPolicy: { Name: c.hostConfig.restartPolicy.name, MaximumRetryCount: c.hostConfig.restartPolicy.maximumRetryCount },
      NetworkMode: c.hostConfig.networkMode,
      PortBindings: Object.fromEntries(c.hostConfig.portBindings.map((b) => [`${b.containerPort}/${b.protocol}`, [{ HostIp: b.hostIp, HostPort: String(b.hostPort) }]])),
      Memory: c.hostConfig.memory,
      NanoCpus: c.hostConfig.nanoCpus,
      PidsLimit: c.hostConfig.pidsLimit,
      ReadonlyRootfs: c.hostConfig.readonlyRootfs,
      CapAdd: c.hostConfig.capAdd,
      CapDrop: c.hostConfig.capDrop,
      Privileged: c.hostConfig.privileged,
      Init: c.hostConfig.init,
      LogConfig: { Type: 'cri', Config: { 'max-size': String(c.hostConfig.logMaxSize), 'max-file': String(c.hostConfig.logMaxFiles) } },
    },
    Mounts: c.hostConfig.mounts.map((m) => ({
      Type: m.type,
      Name: m.type === 'volume' ? m.source : undefined,
      Source: m.type === 'volume' ? path.join(p.volumes, m.source, '_data') : m.source,
      Destination: m.destination,
      RW: !m.readonly,
    })),
    Config: {
      Hostname: c.config.hostname,
      User: c.config.user,
      Tty: c.config.tty,
      OpenStdin: c.config.openStdin,
      Env: c.config.env,
      Cmd: c.config.cmd,
      Entrypoint: c.config.entrypoint,
      Image: c.config.image,
      WorkingDir: c.config.workingDir,
      Labels: c.config.labels,
      StopSignal: c.config.stopSignal,
      StopTimeout: c.config.stopTimeout,
      ExposedPorts: Object.fromEntries(c.config.exposedPorts.map((e) => [e, {}])),
    },
    NetworkSettings: {
      IPAddress: c.network?.ipAddress ?? '',
      IPPrefixLen: c.network?.prefixLen ?? 0,
      Gateway: c.network?.gateway ?? '',
      MacAddress: c.network?.macAddress ?? '',
      SandboxKey: c.network?.netns ?? '',
      Ports: Object.fromEntries(c.hostConfig.portBindings.map((b) => [`${b.containerPort}/${b.protocol}`, [{ HostIp: b.hostIp, HostPort: String(b.hostPort) }]])),
      Networks: c.network && c.network.network !== 'none'
        ? { [c.network.network]: { IPAddress: c.network.ipAddress, IPPrefixLen: c.network.prefixLen, Gateway: c.network.gateway, MacAddress: c.network.macAddress } }
        : {},
    },
  };
}

/** `docker network inspect` of one network; ALL are the containers, to find those attached to it. */
export function inspectNetwork(n: Network, all: readonly Container[]): Record<string, unknown> {
  return {
    Name: n.name, Id: n.id, Created: n.created, Driver: n.driver, Internal: n.internal,
    IPAM: { Driver: 'host-local', Config: [{ Subnet: n.subnet, Gateway: n.gateway }] },
    Options: { 'bridge.name': n.bridge },
    Containers: Object.fromEntries(all.filter((c) => c.network?.network === n.name).map((c) => [c.id, { Name: c.name, IPv4Address: `${c.network!.ipAddress}/${c.network!.prefixLen}`, MacAddress: c.network!.macAddress }])),
  };
}

/** `docker volume inspect` of one volume. */
export function inspectVolumeDoc(v: Volume): Record<string, unknown> {
  return { CreatedAt: v.createdAt, Driver: v.driver, Labels: v.labels, Mountpoint: v.mountpoint, Name: v.name, Scope: 'local' };
}
