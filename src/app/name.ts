// The app-name rule (docs/apps-dir.md rule 1): an app is `NAME.yaml`/`NAME.yml` and NAME is its identity,
// used as the VM name, the manifest name and a state file name, hence the DNS-label-like charset.
import { basename } from 'node:path';
import { AppError } from './errors.ts';

// 1–63 characters, lowercase letters, digits and `-`, not starting with `-`.
export const APP_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

// The app name a compose file path stands for: its base name without `.yaml`/`.yml`.
export function appNameOfFile(file: string): string {
  return basename(file).replace(/\.ya?ml$/, '');
}

// Throw AppError APP_NAME unless `name` follows the rule; the message says how to rename.
export function checkAppName(file: string, name: string): void {
  if (APP_NAME_PATTERN.test(name)) return;
  throw new AppError(
    'APP_NAME',
    file,
    `app name ${JSON.stringify(name)} breaks the rule ${APP_NAME_PATTERN.source} (lowercase letters, digits, "-"; ` +
      'at most 63); apps.d ignores such files, so rename it, e.g. to my-app.yaml',
  );
}
