import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { Component } from '../../protocol/component.js';
import type { TestControlPlane } from '../support/control-plane.js';

/** A valid component definition; `overrides` replace its fields. */
export const componentBody = (overrides: Record<string, unknown> = {}) => ({
  name: `component-${randomUUID().slice(0, 8)}`,
  description: 'Sends HTTP requests',
  image: 'hookline/http:1.0',
  functions: [
    { name: 'request', kind: 'action', description: 'One request', fields: { type: 'object', properties: { url: { type: 'string' } } } },
    { name: 'poll', kind: 'trigger' },
  ],
  ...overrides,
});

/** Creates a component through the API and returns it. */
export async function createComponent(cp: TestControlPlane, token: string, overrides: Record<string, unknown> = {}): Promise<Component> {
  const res = await cp.request('POST', '/components', { token, body: componentBody(overrides) });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.data;
}
