// The cluster's certificates, made at first start as k3s makes them: a CA,
// the API server's certificate (for 127.0.0.1, localhost, the host's name
// and the bind address), and an admin client certificate (O=system:masters)
// for the kubeconfig. Node has no API to issue X.509 certificates, so this
// runs openssl(1) a few times, once per data directory; the keys are 0600
// under DATA_DIR/tls, which is 0700.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';

export interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  adminCert: string;
  adminKey: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const stderr = String((e as { stderr?: Buffer }).stderr ?? '').trim();
    throw new Error(`cannot make the cluster's certificates: openssl ${args[0]} failed${stderr ? `: ${stderr}` : ''} (is openssl installed?)`);
  }
}

/** The certificates in DATA_DIR/tls, made if missing; `hosts` are the server certificate's extra names and addresses. */
export function ensurePki(dataDir: string, hosts: string[]): Pki {
  const dir = path.join(dataDir, 'tls');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const f = (n: string): string => path.join(dir, n);
  const key = (name: string): void => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name], dir);
  if (!fs.existsSync(f('ca.crt'))) {
    key('ca.key');
    openssl(['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '3650', '-subj', `/CN=mycontainer-kube-ca@${Math.floor(Date.now() / 1000)}`, '-out', 'ca.crt'], dir);
  }
  const issue = (name: string, subject: string, ext: string): void => {
    if (fs.existsSync(f(`${name}.crt`))) return;
    key(`${name}.key`);
    openssl(['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`], dir);
    fs.writeFileSync(f(`${name}.ext`), ext);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '3650', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`], dir);
    fs.rmSync(f(`${name}.csr`));
    fs.rmSync(f(`${name}.ext`));
  };
  const names = new Set(['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', os.hostname()]);
  const ips = new Set(['127.0.0.1']);
  for (const h of hosts) (/^[\d.]+$/.test(h) || h.includes(':') ? ips : names).add(h);
  ips.delete('0.0.0.0');
  const san = [...[...names].map((n) => `DNS:${n}`), ...[...ips].map((i) => `IP:${i}`)].join(',');
  issue('server', '/CN=kube-apiserver', `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
  issue('admin', '/O=system:masters/CN=system:admin', 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  for (const n of fs.readdirSync(dir)) if (n.endsWith('.key')) fs.chmodSync(f(n), 0o600);
  const read = (n: string): string => fs.readFileSync(f(n), 'utf8');
  return { dir, ca: read('ca.crt'), serverCert: read('server.crt'), serverKey: read('server.key'), adminCert: read('admin.crt'), adminKey: read('admin.key') };
}

/** The admin kubeconfig (YAML is JSON's superset, so JSON it is: kubectl reads both). */
export function kubeconfig(pki: Pki, server: string): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'mycontainer', cluster: { server, 'certificate-authority-data': b64(pki.ca) } }],
    users: [{ name: 'admin', user: { 'client-certificate-data': b64(pki.adminCert), 'client-key-data': b64(pki.adminKey) } }],
    contexts: [{ name: 'mycontainer', context: { cluster: 'mycontainer', user: 'admin' } }],
    'current-context': 'mycontainer',
    preferences: {},
  }, null, 2) + '\n';
}
