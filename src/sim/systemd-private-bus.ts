import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { SupervisorError } from '../errors.ts';

// dbus-daemon prints its address once its socket listens (a few ms, docs/platform-notes.md §2).
const START_TIMEOUT_MS = 10_000;

// A running private dbus-daemon; `stop()` ends it and waits for it to exit.
export type PrivateBus = { address: string; stop(): Promise<void> };

const escapeXml = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

// Allow-all policy: the private bus exists only for one test, and root owns every peer on it.
function renderBusConfig(socketPath: string): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=${escapeXml(socketPath)}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
`;
}

// Start a dbus-daemon listening on `dir`/bus.sock and resolve with its address.
export async function startPrivateBus(dir: string): Promise<PrivateBus> {
  const configPath = path.join(dir, 'bus.conf');
  await writeFile(configPath, renderBusConfig(path.join(dir, 'bus.sock')));
  const daemon = execa('dbus-daemon', [`--config-file=${configPath}`, '--nofork', '--print-address=1'], {
    reject: false,
    buffer: false,
    stdin: 'ignore',
  });
  const stop = async (): Promise<void> => {
    daemon.kill('SIGTERM');
    await daemon;
  };

  let stderr = '';
  daemon.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const address = await new Promise<string>((resolve, reject) => {
    let stdout = '';
    const fail = (why: string): void =>
      reject(new SupervisorError('SIM_DBUS_DAEMON', `private bus in ${dir}: dbus-daemon ${why}${stderr ? `: ${stderr.trim()}` : ''}; is the dbus package installed?`));
    const timer = setTimeout(() => fail(`printed no address within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    daemon.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const line = stdout.split('\n')[0];
      if (line === undefined || !stdout.includes('\n')) return;
      clearTimeout(timer);
      resolve(line.trim());
    });
    daemon.then((result) => {
      clearTimeout(timer);
      fail(`exited before it listened (${result.failed ? result.shortMessage : `exit ${result.exitCode}`})`);
    });
  }).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return { address, stop };
}
