/**
 * The rule for every outbound call made on a tenant's behalf (the `http` built-in in step workers,
 * OAuth2 token requests in the control plane): it reaches public addresses only, unless the
 * operator allows a network (OUTBOUND_ALLOWED_NETWORKS). Pure: each side plugs it into its own
 * Node connector (runner/outbound.ts, control-plane/outbound.ts), after DNS and before connecting.
 */
import ipaddr from 'ipaddr.js';
import { z } from 'zod';

/** The setting, on the control plane and on runners, that allows networks explicitly. */
export const OUTBOUND_SETTING = 'OUTBOUND_ALLOWED_NETWORKS';

/** Redirects a call follows before it gives up. */
export const MAX_REDIRECTS = 5;

/** A call the outbound rule refuses: it can never succeed, so it is not worth retrying. */
export class OutboundRefused extends Error {
  override name = 'OutboundRefused';
}

/** The refusal behind an error, however deeply fetch wrapped it (`fetch failed`, cause: ...), or null. */
export function outboundRefusal(error: unknown): OutboundRefused | null {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current instanceof OutboundRefused) return current;
  }
  return null;
}

/** What ipaddr.js calls a range, in words; every range but `unicast` is refused. */
const RANGES: Record<string, string> = {
  loopback: 'loopback',
  private: 'RFC 1918',
  linkLocal: 'link-local',
  carrierGradeNat: 'carrier-grade NAT',
  uniqueLocal: 'unique-local',
  unspecified: 'unspecified',
  multicast: 'multicast',
  broadcast: 'broadcast',
};

/**
 * `10.0.0.0/8, 127.0.0.1/32` as a list of networks (a bare address stands for itself alone).
 * Throws naming the entry that is not a network.
 */
export function parseAllowedNetworks(text: string): string[] {
  return text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const wrong = new Error(`"${entry}" is not a network such as 10.0.0.0/8 or fd00::/8`);
      const [, text = '', bits] = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(entry) ?? [];
      // Four-part decimal only: ipaddr.js would also read 10.1 as 10.0.0.1.
      if (!(text.includes(':') ? ipaddr.IPv6.isValid(text) : ipaddr.IPv4.isValidFourPartDecimal(text))) throw wrong;
      try {
        const [address, prefix] = ipaddr.parseCIDR(`${text}/${bits ?? (text.includes(':') ? 128 : 32)}`);
        return `${address.toString()}/${prefix}`;
      } catch {
        throw wrong;
      }
    });
}

/** OUTBOUND_ALLOWED_NETWORKS as a setting (of the control plane and of runners): unset allows no private network. */
export const allowedNetworksSetting = z
  .string()
  .default('')
  .transform((text, context) => {
    try {
      return parseAllowedNetworks(text);
    } catch (error) {
      context.addIssue({ code: 'custom', message: `${(error as Error).message}: give comma-separated networks in CIDR notation` });
      return z.NEVER;
    }
  });

type LookupAddress = { address: string; family: number };
type LookupCallback = (error: Error | null, address: string | LookupAddress[], family?: number) => void;
/** The shape of Node's `dns.lookup`, as a socket calls it. */
export type LookupFunction = (hostname: string, options: { all?: boolean }, callback: LookupCallback) => void;

/** Which addresses outbound calls may reach: public ones, and those in the operator's allowed networks. */
export class OutboundPolicy {
  private readonly networks: [ipaddr.IPv4 | ipaddr.IPv6, number][];

  /** `allowed` as parseAllowedNetworks gives it. */
  constructor(readonly allowed: readonly string[] = []) {
    this.networks = allowed.map((network) => ipaddr.parseCIDR(network));
  }

  /** Why a call may not reach `address` (as DNS gives it, or a URL's literal host), or null when it may. */
  refusal(address: string, host = address): OutboundRefused | null {
    // process() turns IPv4-mapped IPv6 (::ffff:127.0.0.1) into the IPv4 address it stands for.
    const ip = ipaddr.process(address);
    const range = ip.range();
    if (range === 'unicast' || this.networks.some(([network, bits]) => network.kind() === ip.kind() && ip.match(network, bits)))
      return null;
    const subject = host === address ? address : `${host} resolves to ${address}, which`;
    return new OutboundRefused(
      `${subject} is a private address (${RANGES[range] ?? `special-purpose: ${range}`}); outbound calls reach private networks only where the operator allows them (${OUTBOUND_SETTING})`,
    );
  }

  /**
   * Wraps a DNS lookup so that a socket connects only to addresses this policy allows: the others
   * are dropped, and a name with none left fails with the refusal. The socket connects to what
   * this returns, so a second answer of the DNS (rebinding) never reaches it.
   */
  guardLookup(lookup: LookupFunction): LookupFunction {
    return (hostname, options, callback) => {
      lookup(hostname, { ...options, all: true }, (error, found) => {
        if (error) return callback(error, options.all ? [] : '');
        const addresses = found as LookupAddress[];
        const allowed = addresses.filter(({ address }) => !this.refusal(address));
        const [first] = allowed;
        if (!first)
          return callback(
            addresses[0] ? this.refusal(addresses[0].address, hostname) : new OutboundRefused(`${hostname} resolves to no address`),
            options.all ? [] : '',
          );
        if (options.all) callback(null, allowed);
        else callback(null, first.address, first.family);
      });
    };
  }

  /** Wraps a connector (undici's) so that a host given as an IP address, which no lookup sees, is checked too. */
  guardConnect<O extends { hostname: string }, C extends (error: Error, socket: null) => void>(
    connect: (options: O, callback: C) => void,
  ): (options: O, callback: C) => void {
    return (options, callback) => {
      const host = options.hostname.replace(/^\[(.*)\]$/, '$1');
      const refused = ipaddr.isValid(host) ? this.refusal(host) : null;
      if (refused) callback(refused, null);
      else connect(options, callback);
    };
  }
}

/** A request `followRedirects` can send again: its body is text, so a 307 can repeat it. */
export interface OutboundRequest {
  method?: string;
  headers?: Headers | Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** Headers that carry a credential, dropped when a redirect leads to another origin (Authorization and Cookie always are). */
  credentialHeaders?: string[];
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const BODY_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location'];
const ORIGIN_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

/**
 * Sends a request with `send` (a fetch bound to a guarded connector) and follows redirects itself,
 * up to `maxRedirects`, as fetch does (a 303, or a 301/302 after a POST, becomes a GET without
 * body), so that each hop connects through the guard again and credentials stay with their origin.
 */
export async function followRedirects(
  send: (
    url: URL,
    init: { method: string; headers: Headers; body?: string; signal?: AbortSignal; redirect: 'manual' },
  ) => Promise<Response>,
  url: URL,
  request: OutboundRequest,
  maxRedirects = MAX_REDIRECTS,
): Promise<Response> {
  let current = url;
  let method = request.method ?? 'GET';
  let body = request.body;
  const headers = new Headers(request.headers);
  for (let hop = 0; ; hop++) {
    let response: Response;
    try {
      response = await send(current, { method, headers, body, signal: request.signal, redirect: 'manual' });
    } catch (error) {
      const refused = hop > 0 ? outboundRefusal(error) : null;
      throw refused ? new OutboundRefused(`redirected to ${current.origin}${current.pathname}: ${refused.message}`) : error;
    }
    const location = response.headers.get('location');
    if (!REDIRECTS.has(response.status) || location === null) return response;
    await response.body?.cancel();
    if (hop >= maxRedirects) throw new OutboundRefused(`more than ${maxRedirects} redirects`);
    const next = new URL(location, current);
    if (next.protocol !== 'http:' && next.protocol !== 'https:')
      throw new OutboundRefused(`redirected to ${next.protocol} URL, not http(s)`);
    if (response.status === 303 ? method !== 'HEAD' : (response.status === 301 || response.status === 302) && method === 'POST') {
      method = 'GET';
      body = undefined;
      for (const name of BODY_HEADERS) headers.delete(name);
    }
    if (next.origin !== current.origin) for (const name of [...ORIGIN_HEADERS, ...(request.credentialHeaders ?? [])]) headers.delete(name);
    current = next;
  }
}
