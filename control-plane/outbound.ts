import { lookup } from 'node:dns';
import { Agent, buildConnector, fetch } from 'undici';
import type { OutboundPolicy } from '../protocol/outbound.js';

export type OutboundFetch = (
  url: URL,
  init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal },
) => Promise<Response>;

/**
 * fetch for the calls the control plane makes on a tenant's behalf (OAuth2 token requests): only
 * where the policy allows, checked after DNS with the socket pinned to the checked address, and
 * no redirects (a token request would carry its code or refresh token along).
 */
export function outboundFetch(policy: OutboundPolicy): OutboundFetch {
  const dispatcher = new Agent({ connect: policy.guardConnect(buildConnector({ lookup: policy.guardLookup(lookup) })) });
  return (url, init) => fetch(url, { ...init, redirect: 'manual', dispatcher });
}
