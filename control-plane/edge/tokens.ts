import { jwtVerify, SignJWT } from 'jose';
import { CONTROL_PLANE_TOKEN_PARTY, EDGE_TOKEN_PARTY } from '../../protocol/edge.js';
import { unauthorized } from '../http/errors.js';

const key = (secret: string) => new TextEncoder().encode(secret);

/** The token the control plane calls the edge's control API with. */
export const edgeControlToken = (secret: string) =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(CONTROL_PLANE_TOKEN_PARTY)
    .setAudience(EDGE_TOKEN_PARTY)
    .setIssuedAt()
    .setExpirationTime('2m')
    .sign(key(secret));

/** Checks a call from the edge: a token it signed, for the control plane, not expired. */
export async function verifyEdgeToken(secret: string, authorization: string | undefined): Promise<void> {
  const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
  if (!token) throw unauthorized('Missing bearer token from the edge');
  try {
    await jwtVerify(token, key(secret), { issuer: EDGE_TOKEN_PARTY, audience: CONTROL_PLANE_TOKEN_PARTY, algorithms: ['HS256'] });
  } catch {
    throw unauthorized('Invalid or expired edge token');
  }
}
