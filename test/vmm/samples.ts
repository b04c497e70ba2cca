// One realistic request and reply per RPC, in the JSON wire shape, with every kind of field set
// (nested messages, lists, hex bytes, 64-bit ints, proto3 `optional`) so round trips cover them.
import type { VmmMethod, WireObject } from '../../src/vmm/codec.ts';

const COMPOSE = '{"manifest_version":2,"name":"shop","runner":"docker-compose","docker_compose_file":"services: {}"}';

const config: WireObject = {
  name: 'shop',
  image: 'dstack-0.5.11',
  compose_file: COMPOSE,
  vcpu: 2,
  memory: 2048,
  disk_size: 20,
  ports: [
    { protocol: 'tcp', host_port: 8080, vm_port: 80, host_address: '127.0.0.1' },
    { protocol: 'udp', host_port: 5353, vm_port: 53, host_address: '0.0.0.0' },
  ],
  encrypted_env: '00ff10abcdef',
  app_id: 'c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00',
  user_config: '{"k":"v"}',
  hugepages: true,
  pin_numa: false,
  gpus: { gpus: [{ slot: '18:00.0' }], attach_mode: 'listed' },
  kms_urls: ['https://127.0.0.1:8082'],
  gateway_urls: [],
  stopped: true,
  no_tee: false,
  networking: { mode: 'bridge', bridge_name: 'br0' },
  networks: [{ mode: 'user', bridge_name: '' }],
  simulated_tee: 'dstack-tdx',
};

const vmInfo: WireObject = {
  id: '7f1c2b9e-3f57-4a8e-9d7e-0a1b2c3d4e5f',
  name: 'shop',
  status: 'running',
  uptime: '3m 2s',
  app_url: 'http://127.0.0.1:8090',
  app_id: 'c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00',
  instance_id: 'a1b2',
  configuration: config,
  boot_progress: 'done',
  boot_error: '',
  shutdown_progress: '',
  image_version: '0.5.11',
  events: [{ event: 'boot.progress', body: 'done', timestamp: 1_754_550_000_123 }],
  interfaces: [{ mode: 'user', backend: 'slirp', mac: '02:00:00:00:00:01', netdev_id: 'net0' }],
};

// Request and reply samples keyed by method; Empty messages are `{}`.
export const samples: Record<VmmMethod, { request: WireObject; response: WireObject }> = {
  CreateVm: { request: config, response: { id: vmInfo.id } },
  UpdateVm: {
    request: {
      id: vmInfo.id,
      compose_file: COMPOSE,
      encrypted_env: 'beef',
      user_config: '',
      update_ports: true,
      ports: [{ protocol: 'tcp', host_port: 8081, vm_port: 80, host_address: '127.0.0.1' }],
      update_kms_urls: true,
      kms_urls: ['https://kms.local:8082'],
      update_gateway_urls: false,
      gateway_urls: [],
      gpus: { gpus: [], attach_mode: 'all' },
      vcpu: 4,
      memory: 4096,
      disk_size: 40,
      image: 'dstack-0.5.12',
      no_tee: false,
      update_networking: true,
      networks: [],
    },
    response: { id: 'd00dd00dd00dd00dd00dd00dd00dd00dd00dd00d' },
  },
  UpgradeApp: {
    request: { id: vmInfo.id, compose_file: '', encrypted_env: '', user_config: '{"k":"v2"}', update_ports: false, ports: [], update_kms_urls: false, kms_urls: [], update_gateway_urls: false, gateway_urls: [], update_networking: false, networks: [] },
    response: { id: '' },
  },
  ResizeVm: { request: { id: vmInfo.id, vcpu: 4, disk_size: 40 }, response: {} },
  ListGpus: {
    request: {},
    response: { gpus: [{ slot: '18:00.0', product_id: '10de:2335', description: 'H200', is_free: true }], allow_attach_all: true },
  },
  StartVm: { request: { id: vmInfo.id }, response: {} },
  StopVm: { request: { id: vmInfo.id }, response: {} },
  ShutdownVm: { request: { id: vmInfo.id }, response: {} },
  RemoveVm: { request: { id: vmInfo.id }, response: {} },
  Status: {
    request: { ids: [vmInfo.id], brief: false, keyword: 'shop', page: 1, page_size: 50 },
    response: { vms: [vmInfo, { id: 'x', name: 'brief', status: 'stopped', exited_at: '2026-08-07T10:00:00Z' }], port_mapping_enabled: true, total: 2 },
  },
  GetInfo: { request: { id: vmInfo.id }, response: { found: true, info: vmInfo } },
  GetComposeHash: { request: config, response: { hash: 'ab'.repeat(32) } },
  ListImages: {
    request: {},
    response: { images: [{ name: 'dstack-0.5.11', description: '{"version":"0.5.11"}', version: '0.5.11', is_dev: false }] },
  },
  GetMeta: {
    request: {},
    response: {
      kms: { url: '', urls: ['https://127.0.0.1:8082'] },
      gateway: { url: '', base_domain: '', port: 0, agent_port: 8090, urls: [] },
      resources: { max_cvm_number: 1000, max_allocable_vcpu: 64, max_allocable_memory_in_mb: 262_144 },
      networking: { supported_modes: ['user', 'bridge'], default_mode: 'user', default_bridge: 'virbr0' },
    },
  },
  Version: { request: {}, response: { version: '0.5.11', rev: '312dc605' } },
  GetAppEnvEncryptPubKey: {
    request: { app_id: 'c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00' },
    response: { public_key: '02'.repeat(33), signature: 'aa'.repeat(65), timestamp: 1_754_550_000, signature_v1: 'bb'.repeat(65) },
  },
};
