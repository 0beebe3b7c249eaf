import { describe, expect, it } from 'vitest';
import { allowedNetworksSetting, OutboundPolicy, parseAllowedNetworks, type LookupFunction } from '../../protocol/outbound.js';

describe('the outbound policy', () => {
  const none = new OutboundPolicy();

  it('refuses every address that is not public, IPv4-mapped forms included, naming the range', () => {
    for (const [address, range] of [
      ['127.0.0.1', 'loopback'],
      ['127.255.0.9', 'loopback'],
      ['::1', 'loopback'],
      ['::ffff:127.0.0.1', 'loopback'],
      ['169.254.169.254', 'link-local'],
      ['fe80::1', 'link-local'],
      ['10.1.2.3', 'RFC 1918'],
      ['172.16.0.1', 'RFC 1918'],
      ['192.168.1.1', 'RFC 1918'],
      ['::ffff:192.168.1.1', 'RFC 1918'],
      ['100.64.0.1', 'carrier-grade NAT'],
      ['fc00::1', 'unique-local'],
      ['fd12:3456::1', 'unique-local'],
      ['0.0.0.0', 'unspecified'],
      ['::', 'unspecified'],
      ['224.0.0.1', 'multicast'],
      ['ff02::1', 'multicast'],
      ['255.255.255.255', 'broadcast'],
      ['240.0.0.1', 'special-purpose: reserved'],
    ] as const) {
      expect(none.refusal(address)?.message, address).toMatch(
        new RegExp(`is a private address \\(${range.replace(/[()]/g, '\\$&')}\\); .*OUTBOUND_ALLOWED_NETWORKS`),
      );
    }
    for (const address of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])
      expect(none.refusal(address), address).toBeNull();
  });

  it('allows the operator’s networks, and only those', () => {
    const policy = new OutboundPolicy(parseAllowedNetworks('127.0.0.1/32, 10.0.0.0/8,fd00::/8'));
    for (const address of ['127.0.0.1', '::ffff:127.0.0.1', '10.200.0.1', 'fd00::5']) expect(policy.refusal(address), address).toBeNull();
    for (const address of ['127.0.0.2', '::1', '192.168.0.1', 'fc00::1', '169.254.169.254'])
      expect(policy.refusal(address), address).not.toBeNull();
  });

  it('reads the setting: CIDRs or bare addresses, comma-separated; anything else is an error naming it', () => {
    expect(parseAllowedNetworks(' 127.0.0.1 , ::1,10.0.0.0/8,')).toEqual(['127.0.0.1/32', '::1/128', '10.0.0.0/8']);
    expect(allowedNetworksSetting.parse(undefined)).toEqual([]);
    for (const bad of ['10.0.0.0/33', 'localhost', '10.0.0/8', '10.1', '::1/129', '10.0.0.0/8/8', '10.0.0.0/']) {
      const parsed = allowedNetworksSetting.safeParse(`127.0.0.1/32,${bad}`);
      expect(parsed.success, bad).toBe(false);
      expect(parsed.error!.issues[0]!.message).toBe(
        `"${bad}" is not a network such as 10.0.0.0/8 or fd00::/8: give comma-separated networks in CIDR notation`,
      );
    }
  });

  it('hands the socket only the addresses it allows, so a name cannot point a second answer elsewhere', async () => {
    const dns =
      (answer: { address: string; family: number }[]): LookupFunction =>
      (_host, options, callback) => {
        expect(options.all).toBe(true);
        callback(null, answer);
      };
    const resolve = (lookup: LookupFunction, all: boolean) =>
      new Promise<{ error: Error | null; address: unknown }>((done) =>
        none.guardLookup(lookup)('shop.example', { all }, (error, address) => done({ error, address })),
      );
    const mixed = dns([
      { address: '10.0.0.7', family: 4 },
      { address: '93.184.215.14', family: 4 },
      { address: '::1', family: 6 },
    ]);
    expect(await resolve(mixed, true)).toEqual({ error: null, address: [{ address: '93.184.215.14', family: 4 }] });
    expect(await resolve(mixed, false)).toEqual({ error: null, address: '93.184.215.14' });
    const rebound = await resolve(dns([{ address: '169.254.169.254', family: 4 }]), false);
    expect(rebound.error?.message).toMatch(/^shop\.example resolves to 169\.254\.169\.254, which is a private address \(link-local\)/);
  });
});
