import { isIPv4 } from 'node:net';
import * as z from 'zod';

const port = z.number().int().min(1).max(65535);
const absolutePath = z.string().regex(/^\/\S*$/, { message: 'must be an absolute path without spaces' });

// One `[cvm.port_mapping] range` entry of vmm.toml: host ports the VMM lets a CVM publish.
export const PortRangeSchema = z
  .object({ protocol: z.enum(['tcp', 'udp']), from: port, to: port })
  .strict()
  .refine((r) => r.from <= r.to, { message: '`from` must not be above `to`' });

export type PortRange = z.infer<typeof PortRangeSchema>;

// The `[init]` section of supervisor.toml: how the first start initialises the host.
// Paths name the host as it runs in production; probes prefix them with `sysroot`.
export const InitSectionSchema = z
  .object({
    // false = the host is already initialised; `run` skips straight to watching apps.d.
    enabled: z.boolean().default(true),
    // Root that every hardware and binary probe reads from, so tests can hand in a fake host.
    sysroot: z.string().default('/'),
    // The TEE the CVMs run on. `auto` reads the CPU flags under sysroot as upstream's dstackup
    // does: `sev_snp` = AMD SEV-SNP (experimental upstream), `tdx_host_platform` or neither = TDX.
    platform: z.enum(['auto', 'tdx', 'amd-sev-snp']).default('auto'),

    // Where vmm.toml, kms.toml, the unit env files and tls/ are rendered (auth-config.json goes
    // to `[auth] config_path`, and the VMM listens where `[vmm] url` says).
    // The shipped units read /etc/dstack; another value is for tests and `npm run dev`.
    config_dir: absolutePath.default('/etc/dstack'),
    // dstack's own state: the VMM's run_path (`vm/`, which holds every CVM disk and so the KMS
    // keys) lives below it.
    data_dir: absolutePath.default('/var/lib/dstack'),
    // Sockets, pid and log files of the VMM's process supervisor.
    run_dir: absolutePath.default('/run/dstack'),

    // Guest images, one directory each (docs/dstack.md §7); the VMM's `[image] path`.
    images_dir: absolutePath.default('/var/lib/dstack/images'),
    // Image directory name to use; empty = the newest non-dev image under images_dir.
    image: z.string().default(''),
    // Release tarball fetched when no usable image is present; empty = never download.
    image_url: z.string().default(''),
    // Published sha256 of that tarball; required with image_url, checked before unpacking.
    image_sha256: z
      .string()
      .regex(/^([0-9a-fA-F]{64})?$/, { message: 'must be 64 hex characters' })
      .default(''),

    // Binaries the preflight requires and the rendered configs and units name.
    vmm_bin: absolutePath.default('/usr/libexec/dstack/dstack-vmm'),
    // The VMM's own process supervisor (`[supervisor] exe` in vmm.toml). Never our binary:
    // upstream's default path for it is /usr/bin/dstack-supervisor (docs/dstack.md §5.3 "Name clash").
    vmm_supervisor_bin: absolutePath.default('/usr/libexec/dstack/supervisor'),
    qemu_path: absolutePath.default('/usr/bin/qemu-system-x86_64'),
    docker_bin: absolutePath.default('/usr/bin/docker'),
    docker_socket: absolutePath.default('/run/docker.sock'),
    bun_bin: absolutePath.default('/usr/libexec/dstack/bun'),
    auth_simple_script: absolutePath.default('/usr/libexec/dstack/auth-simple/index.ts'),
    // Intel DCAP quote-provider config mounted into the key provider; empty = do not mount/check.
    qcnl_conf: z.union([absolutePath, z.literal('')]).default('/etc/sgx_default_qcnl.conf'),
    key_provider_image: z.string().regex(/^\S+$/, { message: 'must be one docker image reference' }).default('dstacktee/dstack-gramine-key-provider:0.1.0'),

    // auth-simple's loopback port; kms.toml's webhook URL points at it.
    auth_port: port.default(8001),
    key_provider_port: port.default(3443),
    // Host port of the KMS CVM's RPC; 0 = pick a free one inside port_ranges, once, and keep it.
    kms_port: z.number().int().min(0).max(65535).default(0),
    // Host address the KMS CVM's port is also published on, for other hosts' KMS replicas
    // ("0.0.0.0" or this host's LAN address); 127.0.0.1 = this host only. An IPv4 literal: the
    // VMM parses it as an IP address and writes it into QEMU's hostfwd rule without brackets,
    // which an IPv6 address breaks (upstream vmm main_service.rs, app/qemu.rs).
    kms_host_address: z.string().refine(isIPv4, { message: 'must be an IPv4 address: 127.0.0.1 (this host only), 0.0.0.0 (every interface) or one of this host\'s addresses' }).default('127.0.0.1'),
    // The host as a CVM sees it under user-mode networking: the KMS's bootstrap domain and the
    // host part of kms_urls and the webhook URL (docs/dstack.md §5.5).
    guest_host_address: z.string().min(1).default('10.0.2.2'),
    // Host ports apps may publish. Upstream renders tcp 1-20000 only, which refuses UDP and the
    // high ports (docs/dstack.md §9.5); we allow every port of both protocols unless told otherwise.
    port_ranges: z.array(PortRangeSchema).min(1).default([
      { protocol: 'tcp', from: 1, to: 65535 },
      { protocol: 'udp', from: 1, to: 65535 },
    ]),
    // Host address a published port binds to when the compose file names none.
    port_mapping_address: z.string().min(1).default('127.0.0.1'),
    cid_start: z.number().int().min(3).default(1000),
    cid_pool_size: z.number().int().min(1).default(1000),
    // Guest host-API vsock port; unique per VMM on the host.
    host_api_port: port.default(10000),

    // auth-simple policy (docs/dstack.md §6.3): it enforces TCB status, and real TDX hosts are often not
    // UpToDate, so the operator widens these here rather than in auth-config.json.
    allowed_tcb_statuses: z.array(z.string().min(1)).default(['UpToDate']),
    allowed_advisory_ids: z.array(z.string().min(1)).default([]),
    // `kms.allowAnyDevice` in auth-config.json.
    kms_allow_any_device: z.boolean().default(true),
    // `[core.image] verify` in kms.toml: the KMS downloads the image to check its measurement.
    kms_verify_image: z.boolean().default(false),
    // A KMS replica (issue 17): the RPC URL of another host's KMS, as this host's KMS CVM reaches it
    // (`https://host-a:PORT`). The KMS then onboards from it (takes over its root keys) instead of
    // making its own, so an app id has the same keys on both hosts; empty = bootstrap new keys.
    kms_onboard_from: z
      .string()
      .refine((url) => url === '' || (URL.canParse(url) && new URL(url).protocol === 'https:' && new URL(url).hostname !== ''), {
        message: 'must be the https:// URL of the source KMS (https://host-a:PORT), or empty',
      })
      .default(''),
  })
  .strict();

export type InitSection = z.infer<typeof InitSectionSchema>;
