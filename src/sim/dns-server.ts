// A tiny authoritative DNS server for the simulated host, over UDP on loopback (RFC 1035 §4 wire
// format), so the supervisor's check that `*.<domain>` resolves to the host asks a real resolver
// (node:dns, c-ares) a real question. It answers A queries only:
// - a name set with answer() (an exact name, or `*.<zone>` for every name below the zone) gets
//   those addresses, or NXDOMAIN when set to 'nxdomain';
// - otherwise a name under a domain the fallback owns (the simulated gateways' ZT domains: the
//   wildcard record an operator adds for the domain the gateway serves) gets the host's address;
// - anything else is NXDOMAIN; another query type for a known name is NODATA (no answer).
// Differences from a real server: no TCP, no EDNS (an OPT record in the query is ignored and not
// echoed), no SOA in negative answers, one question per message, TTL 0 so nothing is cached.
import { createSocket, type RemoteInfo } from 'node:dgram';

// What a name resolves to: its A addresses, or NXDOMAIN.
export type DnsAnswer = string[] | 'nxdomain';

export type SimDnsOptions = {
  // The addresses a name under one of `zones()` gets (default ['127.0.0.1']).
  hostAddresses?: string[];
  // The zones answered with the host's addresses unless answer() says otherwise.
  zones?: () => readonly string[];
};

export type SimDns = {
  // `127.0.0.1:<port>`, as node:dns setServers() and supervisor.toml's [gateway] dns_servers take it.
  server: string;
  // Set what `name` (exact, or `*.<zone>`) resolves to; undefined drops the setting.
  answer: (name: string, answer: DnsAnswer | undefined) => void;
  // The names asked so far, in order, lower-cased.
  queries: () => string[];
  close: () => Promise<void>;
};

const TYPE_A = 1;
const CLASS_IN = 1;
const RCODE = { noError: 0, formErr: 1, nxDomain: 3, notImp: 4 } as const;

// Start the server on 127.0.0.1, port 0 (any free one).
export async function startSimDns(options: SimDnsOptions = {}): Promise<SimDns> {
  const hostAddresses = options.hostAddresses ?? ['127.0.0.1'];
  const zones = options.zones ?? (() => []);
  const set = new Map<string, DnsAnswer>();
  const asked: string[] = [];
  const socket = createSocket('udp4');

  const lookup = (name: string): DnsAnswer => {
    const exact = set.get(name);
    if (exact !== undefined) return exact;
    const labels = name.split('.');
    for (let i = 1; i < labels.length; i += 1) {
      const wildcard = set.get(`*.${labels.slice(i).join('.')}`);
      if (wildcard !== undefined) return wildcard;
    }
    return zones().some((zone) => name.endsWith(`.${zone.toLowerCase()}`)) ? hostAddresses : 'nxdomain';
  };

  socket.on('message', (msg: Buffer, peer: RemoteInfo) => {
    const reply = answerQuery(msg, (name) => {
      asked.push(name);
      return lookup(name);
    });
    if (reply !== undefined) socket.send(reply, peer.port, peer.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  let closing: Promise<void> | undefined;
  return {
    server: `127.0.0.1:${socket.address().port}`,
    answer: (name, answer) => {
      if (answer === undefined) set.delete(name.toLowerCase());
      else set.set(name.toLowerCase(), answer);
    },
    queries: () => [...asked],
    close: () => (closing ??= new Promise<void>((resolve) => socket.close(() => resolve()))),
  };
}

// The reply to one query message, or undefined for something that is not a query at all.
export function answerQuery(msg: Buffer, lookup: (name: string) => DnsAnswer): Buffer | undefined {
  if (msg.length < 12 || (msg[2]! & 0x80) !== 0) return undefined;
  const id = msg.readUInt16BE(0);
  const opcode = (msg[2]! >> 3) & 0x0f;
  const rd = msg[2]! & 0x01;
  const header = (rcode: number, answers: number, questions = 1): Buffer => {
    const h = Buffer.alloc(12);
    h.writeUInt16BE(id, 0);
    // QR, the query's opcode, AA, its RD; RA off (nothing is recursed); the rcode.
    h[2] = 0x80 | (opcode << 3) | 0x04 | rd;
    h[3] = rcode;
    h.writeUInt16BE(questions, 4);
    h.writeUInt16BE(answers, 6);
    return h;
  };
  const question = msg.readUInt16BE(4) === 1 && opcode === 0 ? readQuestion(msg, 12) : undefined;
  if (question === undefined) return header(opcode === 0 ? RCODE.formErr : RCODE.notImp, 0, 0);
  const answer = lookup(question.name);
  if (answer === 'nxdomain') return Buffer.concat([header(RCODE.nxDomain, 0), question.bytes]);
  const addresses = question.type === TYPE_A && question.klass === CLASS_IN ? answer : [];
  const records = addresses.map((address) => {
    const rr = Buffer.alloc(16);
    // The name as a pointer to the question's (offset 12), type A, class IN, TTL 0, 4 bytes.
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(TYPE_A, 2);
    rr.writeUInt16BE(CLASS_IN, 4);
    rr.writeUInt32BE(0, 6);
    rr.writeUInt16BE(4, 10);
    address.split('.').forEach((octet, i) => (rr[12 + i] = Number(octet)));
    return rr;
  });
  return Buffer.concat([header(RCODE.noError, records.length), question.bytes, ...records]);
}

// The question at `offset`: its name (lower-cased, no trailing dot), type, class and raw bytes.
function readQuestion(msg: Buffer, offset: number): { name: string; type: number; klass: number; bytes: Buffer } | undefined {
  const labels: string[] = [];
  let at = offset;
  for (;;) {
    const length = msg[at];
    // A compression pointer (0xc0) cannot occur in the first question; longer labels are invalid.
    if (length === undefined || length > 63) return undefined;
    at += 1;
    if (length === 0) break;
    if (at + length > msg.length) return undefined;
    labels.push(msg.toString('latin1', at, at + length).toLowerCase());
    at += length;
  }
  if (at + 4 > msg.length) return undefined;
  return { name: labels.join('.'), type: msg.readUInt16BE(at), klass: msg.readUInt16BE(at + 2), bytes: msg.subarray(offset, at + 4) };
}
