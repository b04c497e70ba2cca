// What each sub-command accepts, in one table: `dstack-supervisor --help` lists the summaries,
// `dstack-supervisor <command> --help` prints one entry, and each command parses its arguments
// against its own entry (./args.ts). The man page's SYNOPSIS follows this table.
import { CONFIG_OPTION, LOG_FORMAT_OPTION, type CommandSpec } from './args.ts';

export const COMMAND_SPECS = {
  run: {
    summary: 'watch apps.d and keep the host in step with it (the service entry point; SIGHUP: resync now)',
    options: { config: CONFIG_OPTION, 'log-format': LOG_FORMAT_OPTION },
  },
  status: {
    summary: 'print the service and every app: phase, app id, VM id, hash, URLs, last error',
    options: { json: { type: 'boolean', help: 'print one JSON object (schema in dstack-supervisor(8))' }, config: CONFIG_OPTION },
  },
  hash: {
    summary: 'print the app id, compose hash, ports and manifest of a compose file',
    operands: { synopsis: 'FILE', min: 1, max: 1 },
    options: { json: { type: 'boolean', help: 'print one JSON object' }, config: CONFIG_OPTION },
  },
  resync: {
    summary: 'ask the running service to look at every app and VM now (what systemctl reload does)',
    options: {
      pid: { type: 'string', value: 'PID', help: 'signal this process instead of the one state_dir/pid.json names (the unit passes $MAINPID)' },
      config: CONFIG_OPTION,
    },
  },
  init: {
    summary: 'initialise the host: preflight, configs, units, KMS CVM (idempotent)',
    options: { config: CONFIG_OPTION, 'log-format': LOG_FORMAT_OPTION },
  },
  destroy: {
    summary: 'remove every app CVM and generated config; keeps KMS keys unless --purge',
    options: {
      purge: { type: 'boolean', help: 'also remove the KMS CVM, its keys, the TLS files and auth-config.json' },
      config: CONFIG_OPTION,
      'log-format': LOG_FORMAT_OPTION,
    },
  },
  kms: {
    summary: "KMS replicas: print this host's KMS measurement, or allow another KMS's (issue 17)",
    operands: { synopsis: 'measurement | allow MR_AGGREGATED', min: 1, max: 2 },
    options: {
      'os-image': { type: 'string', value: 'HASH', help: 'with allow: the OS image hash of that KMS, added to osImages too' },
      json: { type: 'boolean', help: 'with measurement: print one JSON object' },
      config: CONFIG_OPTION,
    },
  },
  version: {
    summary: 'print the version of dstack-supervisor',
    options: {},
  },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMAND_SPECS;
