// What `run` does with init before it watches apps.d. Kept apart from the init steps, which
// load only when init has to run: a service restart (and every restart after a crash) pays for
// reading one small journal, not for loading TLS, D-Bus and image code.
import type { Config } from '../config.ts';
import type { Logger } from '../log/logger.ts';
import { INIT_STEPS, readInitJournal } from './journal.ts';

// True once every init step has been recorded: `run` then skips init on start.
export async function isInitComplete(stateDir: string): Promise<boolean> {
  const journal = await readInitJournal(stateDir);
  return INIT_STEPS.every((name) => journal.steps[name] !== undefined);
}

// The `[apps]` keys init learned: the KMS URL guests use and the KMS's k256 public key; empty
// values when init has not deployed a KMS yet.
export async function appsSettingsFromInit(stateDir: string): Promise<{ kms_urls: string[]; kms_public_key: string }> {
  const detail = (await readInitJournal(stateDir)).steps.kms?.detail;
  const url = detail?.['url'];
  const key = detail?.['k256_pubkey'];
  return { kms_urls: typeof url === 'string' && url !== '' ? [url] : [], kms_public_key: typeof key === 'string' ? key : '' };
}

// Init when `[init] enabled` and not done yet (always on a simulated host, whose VMs live in
// memory and so are gone after every restart); then `[apps] kms_urls` / `kms_public_key` from
// what init learned, where supervisor.toml leaves them empty.
export async function prepareHost(config: Config, log: Logger): Promise<Config> {
  if (config.init.enabled && (config.sim.enabled || !(await isInitComplete(config.state_dir)))) {
    const { initHost } = await import('./command.ts');
    await initHost(config, log);
  }
  const learned = await appsSettingsFromInit(config.state_dir);
  return {
    ...config,
    apps: {
      ...config.apps,
      kms_urls: config.apps.kms_urls.length > 0 ? config.apps.kms_urls : learned.kms_urls,
      kms_public_key: config.apps.kms_public_key === '' ? learned.kms_public_key : config.apps.kms_public_key,
    },
  };
}
