import { describe, expect, it } from 'vitest';
import worker from '../../edge/worker.js';

describe('edge worker', () => {
  it('reports that it is up', async () => {
    const response = await worker.fetch(new Request('http://edge/healthcheck'));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok', service: 'edge' });
  });

  it('answers 404 in the error envelope for anything else', async () => {
    const response = await worker.fetch(new Request('http://edge/hook/123', { method: 'POST' }));
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ errors: [{ message: 'No route for POST /hook/123', code: 'not_found' }] });
  });
});
