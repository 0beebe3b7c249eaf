import { describe, expect, it } from 'vitest';
import { peerTokenProblem, signPeerToken } from '../../protocol/peer-token.js';

const SECRET = 'a-secret-the-edge-and-the-control-plane-share';
const bearer = (token: string) => `Bearer ${token}`;

describe('peer tokens between the edge and the control plane', () => {
  it('a token the edge signed is good for the control plane, and one the control plane signed for the edge', async () => {
    expect(await peerTokenProblem(SECRET, 'control-plane', bearer(await signPeerToken(SECRET, 'edge')))).toBeNull();
    expect(await peerTokenProblem(SECRET, 'edge', bearer(await signPeerToken(SECRET, 'control-plane')))).toBeNull();
  });

  it('refuses a token sent back to the party that signed it', async () => {
    expect(await peerTokenProblem(SECRET, 'edge', bearer(await signPeerToken(SECRET, 'edge')))).toBe('invalid');
    expect(await peerTokenProblem(SECRET, 'control-plane', bearer(await signPeerToken(SECRET, 'control-plane')))).toBe('invalid');
  });

  it('refuses a token on another secret, an expired one, and a call without one', async () => {
    expect(await peerTokenProblem(SECRET, 'control-plane', bearer(await signPeerToken(`${SECRET}-other`, 'edge')))).toBe('invalid');
    expect(await peerTokenProblem(SECRET, 'control-plane', bearer(await signPeerToken(SECRET, 'edge', '-1m')))).toBe('invalid');
    expect(await peerTokenProblem(SECRET, 'control-plane', undefined)).toBe('missing');
    expect(await peerTokenProblem(SECRET, 'control-plane', 'Basic abc')).toBe('missing');
  });
});
