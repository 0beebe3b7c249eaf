import type { WebhookAuth } from '../protocol/edge.js';
import { errorResponse } from './errors.js';
import { Rejection } from './hook-request.js';

const encoder = new TextEncoder();
// Failures say only that authentication failed: which part was wrong would help a forger.
const missing = () => new Rejection(errorResponse(401, 'Authentication required', 'unauthorized'));
const wrong = () => new Rejection(errorResponse(403, 'Authentication failed', 'forbidden'));

const HASHES = { sha1: 'SHA-1', sha256: 'SHA-256', sha512: 'SHA-512' } as const;

const hmacKey = (secret: Uint8Array, hash: string) => crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash }, false, ['verify']);

function decode(text: string, encoding: 'hex' | 'base64'): Uint8Array | null {
  if (encoding === 'hex') {
    if (!/^(?:[0-9a-f]{2})+$/i.test(text)) return null;
    return Uint8Array.from(text.match(/../g)!.map((byte) => parseInt(byte, 16)));
  }
  try {
    return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
  } catch {
    return null;
  }
}

/** HMAC verification by Web Crypto's `verify`, which compares in constant time. */
async function hmacMatches(secret: Uint8Array, hash: string, signature: Uint8Array, content: Uint8Array): Promise<boolean> {
  return crypto.subtle.verify('HMAC', await hmacKey(secret, hash), signature, content);
}

/** Constant-time equality of two strings of any length: their SHA-256 digests are compared. */
async function sameText(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([
    crypto.subtle.digest('SHA-256', encoder.encode(a)),
    crypto.subtle.digest('SHA-256', encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(x, y);
}

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
};

/**
 * What a signature covers: a POST's raw body; for GET and HEAD, whose data is the query, the
 * request's path and query as sent (`/hook/<flowId>?customer=7`), so one signature cannot be
 * replayed with another query.
 */
function signedContent(request: Request, body: Uint8Array): Uint8Array {
  if (request.method === 'POST') return body;
  const url = new URL(request.url);
  return encoder.encode(`${url.pathname}${url.search}`);
}

/** Checks a webhook call against its flow's auth settings; throws a 401 (no credential) or 403 (a wrong one). */
export async function authenticateHook(auth: WebhookAuth | undefined, request: Request, body: Uint8Array, now = Date.now()): Promise<void> {
  if (!auth) return;
  const signed = signedContent(request, body);
  switch (auth.type) {
    case 'bearer': {
      const header = request.headers.get('authorization');
      if (!header) throw missing();
      const token = /^Bearer\s+(.+)$/i.exec(header)?.[1] ?? '';
      if (!(await sameText(token, auth.token))) throw wrong();
      return;
    }
    case 'hmac': {
      const header = request.headers.get(auth.header);
      if (!header) throw missing();
      const digest = header.startsWith(auth.prefix) ? decode(header.slice(auth.prefix.length), auth.encoding) : null;
      if (!digest || !(await hmacMatches(encoder.encode(auth.secret), HASHES[auth.algorithm], digest, signed))) throw wrong();
      return;
    }
    case 'standard-webhooks': {
      const id = request.headers.get('webhook-id');
      const timestamp = request.headers.get('webhook-timestamp');
      const signatures = request.headers.get('webhook-signature');
      if (!id || !timestamp || !signatures) throw missing();
      const seconds = Number(timestamp);
      if (!/^\d+$/.test(timestamp) || Math.abs(now / 1000 - seconds) > auth.toleranceSeconds) throw wrong();
      const content = concat(encoder.encode(`${id}.${timestamp}.`), signed);
      const given = signatures
        .split(' ')
        .filter((entry) => entry.startsWith('v1,'))
        .map((entry) => decode(entry.slice(3), 'base64'))
        .filter((bytes): bytes is Uint8Array => bytes !== null);
      for (const secret of auth.secrets) {
        const key = decode(secret.slice('whsec_'.length), 'base64');
        if (!key) continue;
        for (const signature of given) if (await hmacMatches(key, 'SHA-256', signature, content)) return;
      }
      throw wrong();
    }
  }
}
