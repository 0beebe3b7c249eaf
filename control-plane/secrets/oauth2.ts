import { z } from 'zod';
import { outboundRefusal } from '../../protocol/outbound.js';
import type { SecretValue } from '../../protocol/secrets.js';
import type { OutboundFetch } from '../outbound.js';

export interface OAuthClient {
  clientId: string;
  clientSecret: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
}

/** The provider's page the user is sent to (RFC 6749 §4.1.1). */
export function authorizationUrl(client: OAuthClient, options: { redirectUri: string; scope: string; state: string }): string {
  const url = new URL(client.authorizationEndpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', client.clientId);
  url.searchParams.set('redirect_uri', options.redirectUri);
  if (options.scope) url.searchParams.set('scope', options.scope);
  url.searchParams.set('state', options.state);
  return url.toString();
}

const tokenResponse = z.object({
  access_token: z.string().min(1),
  token_type: z.string().optional(),
  refresh_token: z.string().optional(),
  expires_in: z.coerce.number().positive().optional(),
  scope: z.string().optional(),
});

/** Why a token request failed, in the provider's words. */
export class OAuthError extends Error {}

/**
 * A token request (RFC 6749 §4.1.3 and §6) with client_secret_basic, through the outbound guard
 * (no private address unless allowed, no redirect); the answer as an OAUTH2 secret value.
 */
async function tokenRequest(
  send: OutboundFetch,
  client: OAuthClient,
  params: Record<string, string>,
  previous?: SecretValue<'OAUTH2'>,
): Promise<SecretValue<'OAUTH2'>> {
  const credentials = Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64');
  let response: Response;
  try {
    response = await send(new URL(client.tokenEndpoint), {
      method: 'POST',
      headers: { authorization: `Basic ${credentials}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(params).toString(),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    const refused = outboundRefusal(error);
    throw new OAuthError(
      refused
        ? `token endpoint refused: ${refused.message}`
        : `token endpoint ${client.tokenEndpoint} unreachable: ${(error as Error).message}`,
    );
  }
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const detail =
      body && typeof body === 'object'
        ? [(body as Record<string, unknown>).error, (body as Record<string, unknown>).error_description].filter(Boolean).join(': ')
        : '';
    throw new OAuthError(`token endpoint answered ${response.status}${detail ? ` (${detail})` : ''}`);
  }
  const parsed = tokenResponse.safeParse(body);
  if (!parsed.success) throw new OAuthError('token endpoint answered without an access_token');
  const tokens = parsed.data;
  return {
    accessToken: tokens.access_token,
    // A provider may keep the refresh token the same and not send it again.
    refreshToken: tokens.refresh_token ?? previous?.refreshToken,
    tokenType: tokens.token_type ?? 'Bearer',
    scope: tokens.scope ?? previous?.scope,
    expiresAt: tokens.expires_in ? new Date(Date.now() + tokens.expires_in * 1000).toISOString() : undefined,
  };
}

export const exchangeCode = (send: OutboundFetch, client: OAuthClient, code: string, redirectUri: string) =>
  tokenRequest(send, client, { grant_type: 'authorization_code', code, redirect_uri: redirectUri });

export const refreshTokens = (send: OutboundFetch, client: OAuthClient, value: SecretValue<'OAUTH2'>) =>
  tokenRequest(send, client, { grant_type: 'refresh_token', refresh_token: value.refreshToken! }, value);
