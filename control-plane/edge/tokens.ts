import { jwtVerify, SignJWT } from 'jose';
import { unauthorized } from '../http/errors.js';

/** Both directions are signed with EDGE_CONTROL_SECRET, each with its own issuer and audience. */
const CONTROL_PLANE = 'hookline-control-plane';
const EDGE = 'hookline-edge';
const key = (secret: string) => new TextEncoder().encode(secret);

/** The token the control plane calls the edge's control API with. */
export const edgeControlToken = (secret: string) =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer(CONTROL_PLANE).setAudience(EDGE).setIssuedAt().setExpirationTime('2m').sign(key(secret));

/** Checks a call from the edge: a token it signed, for the control plane, not expired. */
export async function verifyEdgeToken(secret: string, authorization: string | undefined): Promise<void> {
  const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
  if (!token) throw unauthorized('Missing bearer token from the edge');
  try {
    await jwtVerify(token, key(secret), { issuer: EDGE, audience: CONTROL_PLANE, algorithms: ['HS256'] });
  } catch {
    throw unauthorized('Invalid or expired edge token');
  }
}
