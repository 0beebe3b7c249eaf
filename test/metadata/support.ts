import { count, eq } from 'drizzle-orm';
import { gzipSync, strToU8, zipSync } from 'fflate';
import { pack } from 'tar-stream';
import { expect } from 'vitest';
import { schemas } from '../../control-plane/metadata/schema.js';
import type { TestControlPlane } from '../support/control-plane.js';

export async function createDomain(cp: TestControlPlane, token: string, body: Record<string, unknown> = {}): Promise<any> {
  const res = await cp.request('POST', '/api/v1/domains', { token, body: { name: 'Customers', ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.data;
}

export async function addSchema(cp: TestControlPlane, token: string, domainId: string, body: Record<string, unknown>): Promise<any> {
  const res = await cp.request('POST', `/api/v1/domains/${domainId}/schemas`, { token, body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.data;
}

export async function countSchemas(cp: TestControlPlane, domainId: string): Promise<number> {
  const [row] = await cp.services.db.select({ n: count() }).from(schemas).where(eq(schemas.domainId, domainId));
  return row!.n;
}

/** A schema of a person whose address is `address.json` of the same domain. */
export const personSchema = {
  type: 'object',
  title: 'Person',
  required: ['name'],
  properties: { name: { type: 'string' }, email: { type: 'string', format: 'email' }, address: { $ref: 'address.json' } },
};
export const addressSchema = {
  type: 'object',
  required: ['zip'],
  properties: { zip: { type: 'string', pattern: '^[0-9]{5}$' }, city: { type: 'string' } },
};

type Files = Record<string, unknown>;
const bytesOf = (content: unknown) => strToU8(typeof content === 'string' ? content : JSON.stringify(content));

export const zipOf = (files: Files) =>
  zipSync(Object.fromEntries(Object.entries(files).map(([path, content]) => [path, bytesOf(content)])));

export async function tarOf(files: Files): Promise<Uint8Array> {
  const archive = pack();
  for (const [path, content] of Object.entries(files)) archive.entry({ name: path }, bytesOf(content));
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export const tarGzOf = async (files: Files) => gzipSync(await tarOf(files));

/** POSTs raw bytes (an archive) to the import route. */
export async function postArchive(
  cp: TestControlPlane,
  token: string | undefined,
  domainId: string,
  body: Uint8Array,
  contentType: string,
) {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${cp.url}/api/v1/domains/${domainId}/schemas/import`, { method: 'POST', headers, body });
  return { status: response.status, body: (await response.json()) as any };
}
