import { jwtVerify, SignJWT } from 'jose';

/**
 * The control plane and the edge Worker call each other with HS256 tokens on EDGE_CONTROL_SECRET:
 * each verifies that a token was made by the other (its issuer), for itself (its audience).
 */
export type Peer = 'edge' | 'control-plane';

const PARTY: Record<Peer, string> = { edge: 'hookline-edge', 'control-plane': 'hookline-control-plane' };
const other = (peer: Peer): Peer => (peer === 'edge' ? 'control-plane' : 'edge');
const key = (secret: string) => new TextEncoder().encode(secret);

/** The token `from` calls the other party with: short-lived, so one that leaks is soon worthless. */
export const signPeerToken = (secret: string, from: Peer, expiresIn = '2m'): Promise<string> =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(PARTY[from])
    .setAudience(PARTY[other(from)])
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(key(secret));

/**
 * Checks the Authorization header of a call that `to` received: a bearer token the other party
 * signed, for `to`, not expired. Null when it is good, else what is wrong with it.
 */
export async function peerTokenProblem(secret: string, to: Peer, authorization: string | undefined): Promise<'missing' | 'invalid' | null> {
  const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
  if (!token) return 'missing';
  try {
    await jwtVerify(token, key(secret), { issuer: PARTY[other(to)], audience: PARTY[to], algorithms: ['HS256'] });
    return null;
  } catch {
    return 'invalid';
  }
}
