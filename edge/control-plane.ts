import { SignJWT } from 'jose';
import type { Env } from './env.js';

/** A call to the control plane, authenticated with a 2-minute token on EDGE_CONTROL_SECRET (issuer hookline-edge). */
export async function callControlPlane(env: Env, path: string, init: RequestInit = {}): Promise<Response> {
  if (!env.CONTROL_PLANE_URL) throw new Error('CONTROL_PLANE_URL is not set');
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('hookline-edge')
    .setAudience('hookline-control-plane')
    .setIssuedAt()
    .setExpirationTime('2m')
    .sign(new TextEncoder().encode(env.EDGE_CONTROL_SECRET));
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(`${env.CONTROL_PLANE_URL.replace(/\/+$/, '')}${path}`, { ...init, headers });
}
