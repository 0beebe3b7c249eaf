import { lookup } from 'node:dns';
import { followRedirects, type OutboundPolicy, type OutboundRequest } from '../protocol/outbound.js';

export type OutboundFetch = (url: URL | string, request?: OutboundRequest) => Promise<Response>;
type Send = Parameters<typeof followRedirects>[0];

/**
 * fetch for a step's calls: every connection, redirects included, goes only where the policy
 * allows, checked after DNS with the socket pinned to the checked address.
 */
export function outboundFetch(policy: OutboundPolicy): OutboundFetch {
  // undici is loaded at the first call: most steps make none, and every worker starts sooner.
  let send: Promise<Send> | undefined;
  const sender = () =>
    (send ??= import('undici').then(({ Agent, buildConnector, fetch }) => {
      const dispatcher = new Agent({ connect: policy.guardConnect(buildConnector({ lookup: policy.guardLookup(lookup) })) });
      return (url, init) => fetch(url, { ...init, dispatcher });
    }));
  return async (url, request = {}) => followRedirects(await sender(), new URL(url), request);
}
