// Host files a compose file expects: bind mounts and file-based secrets/configs. None of them
// exist in the CVM (only the compose text travels), so the container sees an empty directory, a
// missing file or fails to start. Sockets the CVM itself provides are fine to mount.
import type { Finding } from './compat.ts';
import type { Compose } from './schema.ts';

// Paths that exist inside every dstack CVM: its docker daemon and the dstack guest agent.
const CVM_SOCKETS = new Set([
  '/var/run/docker.sock',
  '/run/docker.sock',
  '/var/run/dstack.sock',
  '/run/dstack.sock',
  // dstack before 0.5 named the guest agent socket tappd.
  '/var/run/tappd.sock',
]);

// Bind mounts of every active service, then top-level secrets and configs read from files.
export function findHostFiles(compose: Compose, envFile: string): Finding[] {
  const findings: Finding[] = [];
  for (const [service, spec] of Object.entries(compose.services)) {
    if (spec.profiles && spec.profiles.length > 0) continue;
    const volumes = Array.isArray(spec['volumes']) ? (spec['volumes'] as unknown[]) : [];
    volumes.forEach((volume, index) => {
      const source = bindSource(volume);
      if (source === undefined || CVM_SOCKETS.has(source)) return;
      findings.push({
        service,
        key: 'volumes',
        path: ['services', service, 'volumes', index],
        message:
          `bind-mounts ${source} from the host, and host files are not visible inside the CVM (the container gets an empty ` +
          `directory, or fails to start); use a named volume, bake the files into the image, or pass settings through ${envFile}`,
      });
    });
  }
  for (const section of ['secrets', 'configs'] as const) {
    const entries = compose[section];
    if (typeof entries !== 'object' || entries === null) continue;
    for (const [name, definition] of Object.entries(entries)) {
      if (typeof definition !== 'object' || definition === null || !('file' in definition)) continue;
      const users = usersOf(compose, section, name);
      const source = section === 'secrets' ? `environment: ${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}` : 'content: |';
      findings.push({
        service: '',
        key: `${section}.${name}`,
        path: [section, name, 'file'],
        message:
          `${section === 'secrets' ? 'secret' : 'config'} ${name}${users ? ` (used by ${users})` : ''} is read from ` +
          `${String(definition.file)} on the host, which is not in the CVM; define it with \`${source}\` instead` +
          (section === 'secrets' ? ` and put that variable in ${envFile}` : ''),
      });
    }
  }
  return findings;
}

// The host path of a bind mount, or undefined for named and anonymous volumes.
function bindSource(volume: unknown): string | undefined {
  if (typeof volume === 'string') {
    const colon = volume.indexOf(':');
    // `/data` alone is an anonymous volume at that container path.
    if (colon === -1) return undefined;
    const source = volume.slice(0, colon);
    return /^[./~$]/.test(source) ? source : undefined;
  }
  if (typeof volume === 'object' && volume !== null && 'type' in volume && volume.type === 'bind' && 'source' in volume) {
    return String(volume.source);
  }
  return undefined;
}

// Active services that list secret/config `name`, comma-joined, or '' when none does.
function usersOf(compose: Compose, section: 'secrets' | 'configs', name: string): string {
  return Object.entries(compose.services)
    .filter(([, spec]) => !(spec.profiles && spec.profiles.length > 0))
    .filter(([, spec]) => {
      const refs = spec[section];
      // Short form `- name`, long form `- {source: name, target: ...}`.
      const refers = (r: unknown) => r === name || (typeof r === 'object' && r !== null && 'source' in r && r.source === name);
      return Array.isArray(refs) && refs.some(refers);
    })
    .map(([service]) => service)
    .join(', ');
}
