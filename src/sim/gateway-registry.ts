// The gateway's table of registered CVM instances (dstack/gateway/src/main_service.rs
// `do_register_cvm`, `new_client_by_id`, `select_top_n_hosts`). Upstream a guest registers over
// mutual RA-TLS and gets a WireGuard address; here the simulated host registers it directly and
// says on which host addresses its guest ports listen.
import type { HostInfo } from '../gateway/admin-messages.ts';
import { GatewayRejection, inKeyOrder, type GatewayInstance, type GatewayStore } from './gateway-store.ts';
import type { HostPort } from './vm-rules.ts';

// What a booting guest registers: its ids and its launched port forwards (tcp ones are used).
export type GatewayRegisterRequest = { appId: string; instanceId: string; ports: HostPort[] };

// The part of RegisterCvmResponse a guest acts on: its tunnel address and the best ZT-domain
// ("" and 0 while none is configured, as upstream).
export type GatewayRegistration = { clientIp: string; domain: string; externalPort: number };

// A backend address to dial for one guest port.
export type Backend = { instanceId: string; host: string; port: number };

// The CVM client range of the deploy script's SUBNET_INDEX 0 (10.8.0.0/18); .1 is the gateway.
const CLIENT_NET = [10, 8, 0, 0] as const;
const CLIENT_HOSTS = 1 << 14;

// Add or refresh an instance. A known instance keeps its address and registration time and gets
// the new ports (a guest re-registers on every boot).
export function registerInstance(store: GatewayStore, req: GatewayRegisterRequest, nowSecs: number): GatewayInstance {
  if (req.appId === '') throw new GatewayRejection(`[${req.instanceId}] app id is empty`);
  if (req.instanceId === '') throw new GatewayRejection('[] instance id is empty');
  const ports = req.ports.filter((p) => p.protocol === 'tcp').map((p) => ({ ...p }));
  const existing = store.instances.get(req.instanceId);
  if (existing !== undefined) {
    if (existing.appId !== req.appId) {
      throw new GatewayRejection('failed to allocate IP address for client: instance_id is already registered to a different app');
    }
    existing.ports = ports;
    return existing;
  }
  const instance: GatewayInstance = { id: req.instanceId, appId: req.appId, ip: allocateIp(store), ports, regTime: nowSecs };
  store.instances.set(instance.id, instance);
  return instance;
}

// Drop an instance (upstream's recycler does this once its handshakes are stale for 10 h).
export function removeInstance(store: GatewayStore, instanceId: string): boolean {
  return store.instances.delete(instanceId);
}

// The instances an SNI id names: an instance id names that one instance, an app id all of the
// app's instances (upstream races connects to the top n by handshake; here, in key order).
export function instancesFor(store: GatewayStore, id: string): GatewayInstance[] | undefined {
  const instance = store.instances.get(id);
  if (instance !== undefined) return [instance];
  const ofApp = inKeyOrder(store.instances).filter((i) => i.appId === id);
  return ofApp.length === 0 ? undefined : ofApp;
}

// Where `instance` listens for guest port `port`, if that port is forwarded. An unspecified bind
// address is dialled on loopback.
export function backendFor(instance: GatewayInstance, port: number): Backend | undefined {
  const forward = instance.ports.find((p) => p.vm_port === port);
  if (forward === undefined) return undefined;
  const host = forward.host_address === '0.0.0.0' ? '127.0.0.1' : forward.host_address === '::' ? '::1' : forward.host_address;
  return { instanceId: instance.id, host, port: forward.host_port };
}

// Status.hosts: every instance, with the best base domain and its open proxied connections.
// `latest_handshake` is the registration time: there is no WireGuard to report one.
export function hostInfos(store: GatewayStore, baseDomain: string, connections: (instanceId: string) => number): HostInfo[] {
  return inKeyOrder(store.instances).map((i) => ({
    instance_id: i.id,
    ip: i.ip,
    app_id: i.appId,
    base_domain: baseDomain,
    latest_handshake: i.regTime,
    num_connections: connections(i.id),
  }));
}

// The lowest free address of the client range, skipping the network and the gateway's own.
function allocateIp(store: GatewayStore): string {
  const taken = new Set([...store.instances.values()].map((i) => i.ip));
  for (let host = 2; host < CLIENT_HOSTS - 1; host += 1) {
    const ip = [CLIENT_NET[0], CLIENT_NET[1], CLIENT_NET[2] + (host >> 8), host & 0xff].join('.');
    if (!taken.has(ip)) return ip;
  }
  throw new GatewayRejection('failed to allocate IP address for client: IP pool exhausted, no available addresses in client_ip_range');
}
