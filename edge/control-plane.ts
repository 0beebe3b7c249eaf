import { signPeerToken } from '../protocol/peer-token.js';
import type { Env } from './env.js';

/** A call to the control plane, authenticated with a 2-minute token on EDGE_CONTROL_SECRET (issuer hookline-edge). */
export async function callControlPlane(env: Env, path: string, init: RequestInit = {}): Promise<Response> {
  if (!env.CONTROL_PLANE_URL) throw new Error('CONTROL_PLANE_URL is not set');
  const token = await signPeerToken(env.EDGE_CONTROL_SECRET, 'edge');
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(`${env.CONTROL_PLANE_URL.replace(/\/+$/, '')}${path}`, { ...init, headers });
}
