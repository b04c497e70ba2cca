// Init step 4: the host CA, `<config_dir>/tls/ca.{crt,key}`. It signs the certificates the
// simulated gateway serves (in place of an ACME CA), so `curl --cacert` works in `npm run dev`.
// No server certificate is issued: nothing on the host would serve one (dstack-vmm listens on a
// unix socket, Tier 1 apps publish their own ports). Keys come from node:crypto (forge's pure-JS
// keygen takes seconds, docs/platform-notes.md §1); node-forge only builds the X.509 structures,
// which node:crypto cannot. A re-run keeps a CA that is still good and replaces one that is
// expiring, broken or not a CA.
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmod, stat } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { tlsError } from './errors.ts';
import { readFileIfExists, writeIfChanged } from './files.ts';

const DAY_MS = 86_400_000;
const CA_LIFETIME_DAYS = 3650;
// Apple platforms refuse server certificates valid for more than 825 days even under a
// user-installed CA; 397 also satisfies the stricter public-CA rule browsers apply.
const SERVER_LIFETIME_DAYS = 397;
// Re-issue ahead of expiry so a host that re-inits now and then never signs with an expired CA.
const CA_RENEW_DAYS = 365;

// The CA's two files under the TLS directory.
export type TlsPaths = { caCert: string; caKey: string };

// The names a server certificate covers.
export type HostNames = { dns: string[]; ips: string[] };

// Injected edges: the clock, and the host's name (os.hostname by default) for the CA's name.
export type TlsDeps = { now?: () => number; hostname?: string };

// What ensureHostCa left: the paths, and the files it wrote (none on a healthy re-run).
export type TlsResult = { paths: TlsPaths; written: string[] };

// The TLS files below `dir`.
export function tlsPaths(dir: string): TlsPaths {
  return { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key') };
}

// Make sure `dir` holds a usable CA, its key mode 0600.
export async function ensureHostCa(dir: string, deps: TlsDeps = {}): Promise<TlsResult> {
  const now = deps.now?.() ?? Date.now();
  const paths = tlsPaths(dir);
  const written: string[] = [];
  const write = async (path: string, data: string, mode: number): Promise<void> => {
    if (await writeIfChanged(path, data, mode)) written.push(path);
  };
  const ca = await loadPair(paths.caCert, paths.caKey);
  if (ca === undefined || !ca.cert.ca || !fresh(ca.cert, now, CA_RENEW_DAYS)) {
    const issued = issueCa((deps.hostname ?? osHostname()).toLowerCase() || 'localhost', now);
    await write(paths.caKey, issued.keyPem, 0o600);
    await write(paths.caCert, issued.certPem, 0o644);
  }
  // The key stays private even if someone loosened it; writeIfChanged fixed it if we rewrote it.
  if (((await stat(paths.caKey)).mode & 0o777) !== 0o600) {
    await chmod(paths.caKey, 0o600);
    written.push(paths.caKey);
  }
  return { paths, written: [...new Set(written)] };
}

type Pair = { cert: X509Certificate; certPem: string; keyPem: string };

// A certificate and its key, or undefined when either is missing, unreadable or they do not match.
async function loadPair(certPath: string, keyPath: string): Promise<Pair | undefined> {
  const certPem = await readOrThrow(certPath);
  const keyPem = await readOrThrow(keyPath);
  if (certPem === undefined || keyPem === undefined) return undefined;
  try {
    const cert = new X509Certificate(certPem);
    return cert.checkPrivateKey(createPrivateKey(keyPem)) ? { cert, certPem, keyPem } : undefined;
  } catch {
    return undefined;
  }
}

async function readOrThrow(path: string): Promise<string | undefined> {
  try {
    return await readFileIfExists(path);
  } catch (err) {
    throw tlsError(path, 'cannot read it', err);
  }
}

function fresh(cert: X509Certificate, now: number, renewDays: number): boolean {
  return Date.parse(cert.validFrom) <= now && Date.parse(cert.validTo) - now > renewDays * DAY_MS;
}

// A certificate and its private key, both PEM.
export type Issued = { certPem: string; keyPem: string };

function issueCa(hostname: string, now: number): Issued {
  const keys = newKeyPair();
  const subject = [
    { name: 'commonName', value: `dstack-supervisor local CA (${hostname})` },
    { name: 'organizationName', value: 'dstack-supervisor' },
  ];
  const cert = baseCert(keys.publicPem, subject, subject, now, CA_LIFETIME_DAYS);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keys.privatePem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.privatePem };
}

// A server certificate for `names` signed by `ca`, valid from `now` for SERVER_LIFETIME_DAYS: what
// the simulated gateway serves, in place of an ACME CA's.
export function issueServerCert(names: HostNames, ca: Issued, now: number): Issued {
  const keys = newKeyPair();
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const subject = [
    { name: 'commonName', value: names.dns[0] ?? 'localhost' },
    { name: 'organizationName', value: 'dstack-supervisor' },
  ];
  const cert = baseCert(keys.publicPem, subject, caCert.subject.attributes, now, SERVER_LIFETIME_DAYS);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [...names.dns.map((value) => ({ type: 2, value })), ...names.ips.map((ip) => ({ type: 7, ip }))] },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.privatePem };
}

function baseCert(publicPem: string, subject: forge.pki.CertificateField[], issuer: forge.pki.CertificateField[], now: number, days: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  // 16 random bytes, high bit clear so the DER INTEGER stays positive (RFC 5280 §4.1.2.2).
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  // Backdated a little so a peer whose clock lags by minutes still accepts a fresh cert.
  cert.validity.notBefore = new Date(now - 3_600_000);
  cert.validity.notAfter = new Date(now + days * DAY_MS);
  cert.setSubject(subject);
  cert.setIssuer(issuer);
  return cert;
}

function newKeyPair(): { publicPem: string; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicPem: publicKey, privatePem: privateKey };
}
