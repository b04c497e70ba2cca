// What the fleet tests share: whether ansible-playbook is here, the collection as Ansible finds it, and the inventory entries of a
// simulated host on this machine that Ansible reaches with ansible_connection=local.
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

const ROOT = join(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/dstack-supervisor.mjs');

// A collections path under `work` whose dstack.supervisor is this checkout's packaging/ansible.
export async function linkCollection(work: string): Promise<string> {
  const collections = join(work, 'collections');
  await mkdir(join(collections, 'ansible_collections', 'dstack'), { recursive: true });
  await symlink(join(ROOT, 'packaging/ansible'), join(collections, 'ansible_collections', 'dstack', 'supervisor'));
  return collections;
}

// Why the test cannot run here, or false.
export async function whyNoAnsible(): Promise<string | false> {
  const found = await execa('sh', ['-c', 'command -v ansible-playbook'], { reject: false });
  return found.exitCode === 0 ? false : 'not run: ansible-playbook not installed; apt-get install --no-install-recommends ansible-core';
}

// The host vars that make the collection drive the supervisor at `config` from this checkout.
export function localHostVars(config: string): Record<string, unknown> {
  return {
    ansible_connection: 'local',
    ansible_python_interpreter: '/usr/bin/python3',
    dstack_supervisor_command: [process.execPath, BIN],
    dstack_supervisor_config: config,
  };
}

// host_config's keys that put a host's directories under `dir`, on its own simulated dstack-vmm.
export function simHostPaths(dir: string, appsDir: string, authPath: string): Record<string, unknown> {
  return {
    apps_dir: appsDir,
    gateway_dir: join(dir, 'gateway.d'),
    state_dir: join(dir, 'state'),
    vmm: { url: `unix:${join(dir, 'sim', 'vmm.sock')}`, token_file: '' },
    auth: { config_path: authPath },
  };
}
