// Where a VMM address would carry the bearer token across a network in clear text (issue 13
// item 6): `http://` and `tcp:` (plain HTTP over TCP, see parseVmmAddress) to a host that is not
// loopback. `unix:` sockets and `https://` never do.
import { parseVmmAddress } from './transport.ts';
import { VmmError } from './errors.ts';

// Loopback, as the WHATWG URL parser normalises hosts (`127.1` and `0x7f000001` become 127.0.0.1,
// `[0:0:0:0:0:0:0:1]` becomes [::1], `[::ffff:127.0.0.1]` becomes [::ffff:7f00:1]).
const LOOPBACK = [/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/, /^\[::1\]$/, /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/, /^localhost$/];

// The non-loopback host that a token sent to `url` would reach in clear text, or null when it
// would not (or when `url` is not an address at all, which the client reports on its own).
export function cleartextTokenHost(url: string): string | null {
  let baseUrl: string;
  try {
    ({ baseUrl } = parseVmmAddress(url));
  } catch (err) {
    if (err instanceof VmmError) return null;
    throw err;
  }
  if (url.startsWith('unix:')) return null;
  const target = new URL(baseUrl);
  if (target.protocol !== 'http:') return null;
  return LOOPBACK.some((re) => re.test(target.hostname)) ? null : target.hostname;
}
