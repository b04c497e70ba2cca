// The two things the gateway proxy reads from a name: the SNI in a TLS ClientHello, taken before
// any handshake (dstack/gateway/src/proxy/sni.rs), and the first label's grammar
// `<id>[-[<port>][s|g]]` (dstack/gateway/src/proxy.rs `parse_dst_info`).
import { GatewayRejection } from './gateway-store.ts';

// What the first bytes of a connection say: not enough yet, no SNI, or the server name.
export type SniScan = { kind: 'more' } | { kind: 'none' } | { kind: 'found'; name: string };

// Where a name routes: the instance or app id, the CVM port, and whether TLS passes through to
// the app (`s`) or is terminated with ALPN h2 (`g`).
export type Destination = { id: string; port: number; passthrough: boolean; h2: boolean };

// Upstream reads at most this much looking for the SNI; a longer ClientHello has none for it.
export const SNI_READ_LIMIT = 4096;

const CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const HOST_NAME = 0;

class Truncated extends Error {}

// Read the SNI host name from the start of a TLS stream (record header, then the ClientHello).
export function scanSni(buf: Buffer): SniScan {
  if (buf.length < 10) return { kind: 'more' };
  let at = 5;
  const take = (n: number): Buffer => {
    if (at + n > buf.length) throw new Truncated();
    const out = buf.subarray(at, at + n);
    at += n;
    return out;
  };
  const u8 = (): number => take(1).readUInt8(0);
  const u16 = (): number => take(2).readUInt16BE(0);
  try {
    if (u8() !== CLIENT_HELLO) return { kind: 'none' };
    take(3 + 34); // handshake length, client version and random
    take(u8()); // session id
    take(u16()); // cipher suites
    take(u8()); // compression methods
    const extensionsEnd = at + u16();
    while (at < extensionsEnd) {
      const type = u16();
      const body = take(u16());
      if (type === EXT_SERVER_NAME) return serverName(body);
    }
    return { kind: 'none' };
  } catch (err) {
    if (err instanceof Truncated) return { kind: 'more' };
    throw err;
  }
}

// The first host_name entry of a server_name extension body.
function serverName(body: Buffer): SniScan {
  let at = 2; // list length
  while (at + 3 <= body.length) {
    const type = body.readUInt8(at);
    const length = body.readUInt16BE(at + 1);
    const name = body.subarray(at + 3, at + 3 + length);
    if (type === HOST_NAME) return { kind: 'found', name: name.toString('utf8') };
    at += 3 + length;
  }
  return { kind: 'none' };
}

// parse_dst_info: `<id>` is port 80, `-<port>` a port, a trailing `s` passthrough (default port
// 443) and `g` h2; `gs` and any further `-` are refused with upstream's texts.
export function parseDestination(label: string): Destination {
  const [id = '', last, ...rest] = label.split('-');
  if (id === '') throw new GatewayRejection('app id is empty');
  let passthrough = false;
  let h2 = false;
  let port: number | undefined;
  if (last !== undefined) {
    let portText = last;
    if (portText.endsWith('g')) [portText, h2] = [portText.slice(0, -1), true];
    if (portText.endsWith('s')) [portText, passthrough] = [portText.slice(0, -1), true];
    if (h2 && passthrough) throw new GatewayRejection('invalid sni format: `gs` is not allowed');
    if (portText !== '') {
      // Rust's u16 parse: digits only (one leading `+` allowed), at most 65535.
      if (!/^\+?\d+$/.test(portText) || Number(portText) > 65_535) throw new GatewayRejection('invalid port');
      port = Number(portText);
    }
  }
  if (rest.length > 0) throw new GatewayRejection('invalid sni format');
  return { id, port: port ?? (passthrough ? 443 : 80), passthrough, h2 };
}
