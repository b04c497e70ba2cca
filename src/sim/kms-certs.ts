// The simulated KMS's certificates. dstack-kms keeps a root CA (signs its RPC certificate; its key
// is a root key every app CA derives from), a temporary CA whose key it hands to anyone (a caller
// signs its own RA-TLS client certificate with it; the attestation inside is what counts), and an
// RPC leaf that, with `attest_rpc_cert`, carries the KMS's own attestation (upstream
// kms/src/onboard_service.rs `Keys::from_keys`, `gen_ra_cert`).
// Where it differs: RSA keys instead of P-256 (node-forge signs RSA only), and the attestation is
// the simulator's JSON (kms-attestation.ts) in a private extension instead of a TDX quote.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';
import type { SimAttestation } from './kms-attestation.ts';

// The extension carrying a simulated attestation (a private arc: this is not upstream's OID).
const ATTESTATION_OID = '1.3.6.1.4.1.55555.1.1';

// A key and its certificate, PEM.
export type Issued = { keyPem: string; certPem: string };

// A fresh RSA private key, PEM (node:crypto: forge's own keygen takes seconds).
export function newKeyPem(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
}

// A self-signed CA certificate for `keyPem`.
export function selfSignedCa(keyPem: string, commonName: string): Issued {
  const key = forge.pki.privateKeyFromPem(keyPem);
  const subject = [{ name: 'commonName', value: commonName }, { name: 'organizationName', value: 'Dstack' }];
  const cert = blankCert(forge.pki.setRsaPublicKey(key.n, key.e), subject, subject);
  cert.setExtensions([{ name: 'basicConstraints', cA: true, critical: true }]);
  cert.sign(key, forge.md.sha256.create());
  return { keyPem, certPem: forge.pki.certificateToPem(cert) };
}

// A leaf certificate signed by `ca` for a new key: an RPC server certificate (`ips`) or an RA-TLS
// client certificate; `attestation` is embedded when given.
export function signedLeaf(ca: Issued, commonName: string, options: { ips?: string[]; attestation?: SimAttestation }): Issued {
  const keyPem = newKeyPem();
  const key = forge.pki.privateKeyFromPem(keyPem);
  const issuer = forge.pki.certificateFromPem(ca.certPem).subject.attributes;
  const cert = blankCert(forge.pki.setRsaPublicKey(key.n, key.e), [{ name: 'commonName', value: commonName }], issuer);
  cert.setExtensions([
    ...(options.ips === undefined ? [] : [{ name: 'subjectAltName', altNames: options.ips.map((ip) => ({ type: 7, ip })) }]),
    ...(options.attestation === undefined ? [] : [{ id: ATTESTATION_OID, value: JSON.stringify(options.attestation) }]),
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
  return { keyPem, certPem: forge.pki.certificateToPem(cert) };
}

// The attestation a certificate (DER, as a TLS peer presents it) carries; undefined when none.
export function attestationIn(der: Buffer): SimAttestation | undefined {
  const cert = forge.pki.certificateFromAsn1(forge.asn1.fromDer(der.toString('binary')));
  const extensions = cert.extensions as { id?: unknown; value?: unknown }[];
  const value = extensions.find((e) => e.id === ATTESTATION_OID)?.value;
  return typeof value === 'string' ? (JSON.parse(value) as SimAttestation) : undefined;
}

function blankCert(publicKey: forge.pki.PublicKey, subject: forge.pki.CertificateField[], issuer: forge.pki.CertificateField[]): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 3_600_000);
  cert.validity.notAfter = new Date(Date.now() + 3650 * 86_400_000);
  cert.setSubject(subject);
  cert.setIssuer(issuer);
  return cert;
}
