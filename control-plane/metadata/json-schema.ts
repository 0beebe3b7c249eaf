import type { ErrorObject, ValidateFunction } from 'ajv';
import { checkPatterns, newSchemaCompiler } from '../../protocol/json-schema.js';
import { badRequest } from '../http/errors.js';

export type JsonSchema = Record<string, unknown>;

/** A path within a domain: segments of letters, digits and `. _ ~ -`, never `.` or `..`. */
export const URI_PATTERN = /^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._~-]+(?:\/[A-Za-z0-9._~-]+)*$/;
export const URI_RULE =
  'must be a path such as person.json or crm/contact.json (letters, digits, . _ ~ - between slashes; no . or .. segments)';

const marker = (domainId: string) => `/api/v1/domains/${domainId}/schemas/`;

/** The `$id` every stored schema gets: where the repository serves it. */
export const schemaUrl = (base: string, domainId: string, uri: string) => `${base.replace(/\/+$/, '')}${marker(domainId)}${uri}`;

/** The uri within `domainId` a stored `$id` or ref names, whatever base it was stored under; null for any other. */
export function uriOf(ref: string, domainId: string): string | null {
  const at = ref.indexOf(marker(domainId));
  return at === -1 ? null : ref.slice(at + marker(domainId).length);
}

/** The uri a schema without an explicit one takes: the path of its `$id` (this repository's prefix removed). */
export function uriFromId(value: JsonSchema): string {
  const id = value.$id;
  if (typeof id !== 'string' || id === '')
    throw badRequest('uri: give a uri, or an $id in value whose path names the schema (such as person.json)');
  let path = id;
  try {
    path = new URL(id).pathname;
  } catch {
    // a relative $id is the path itself
  }
  path = path.replace(/^\/api\/v1\/domains\/[^/]+\/schemas\//, '').replace(/^(\.?\/)+/, '');
  if (!URI_PATTERN.test(path)) throw badRequest(`uri: the path of $id ${id} ${URI_RULE}; give a uri explicitly`);
  return path;
}

/** The schema with its `$id` set to `id`, first among its keys. */
export function withId(value: JsonSchema, id: string): JsonSchema {
  const { $id: _, ...rest } = value;
  return { $id: id, ...rest };
}

/** The schema URLs (without fragment) that `value`, stored as `id`, references, itself excluded. */
export function referencedUrls(value: JsonSchema, id: string): { ref: string; url: string }[] {
  const found = new Map<string, string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(walk);
      return;
    }
    if (!node || typeof node !== 'object') return;
    for (const [key, child] of Object.entries(node)) {
      if (key === '$ref' && typeof child === 'string') {
        let url: URL;
        try {
          url = new URL(child, id);
        } catch {
          throw badRequest(`value: $ref ${JSON.stringify(child)} is not a valid URI reference`);
        }
        url.hash = '';
        if (url.href !== id && !found.has(url.href)) found.set(url.href, child);
      } else walk(child);
    }
  };
  walk(value);
  return [...found].map(([url, ref]) => ({ ref, url }));
}

export interface SchemaSource {
  uri: string;
  value: JsonSchema;
}

/**
 * Compiles `target` with the schemas it references (draft-07, ajv's default). Every `$id` is set
 * from `base` here, so relative refs resolve alike whatever base a schema was stored under.
 * An invalid schema, an unresolvable ref or a pattern RE2 cannot run is a 400 naming `where`.
 */
export function compile(
  base: string,
  domainId: string,
  target: SchemaSource,
  references: SchemaSource[],
  where = 'value',
): ValidateFunction {
  const ajv = newSchemaCompiler();
  try {
    for (const schema of references)
      if (schema.uri !== target.uri) ajv.addSchema(withId(schema.value, schemaUrl(base, domainId, schema.uri)));
    checkPatterns(target.value);
    return ajv.compile(withId(target.value, schemaUrl(base, domainId, target.uri)));
  } catch (error) {
    throw badRequest(`${where}: ${(error as Error).message}`);
  }
}

export interface ValidationError {
  path: string;
  message: string;
  keyword: string;
}

const pointer = (segment: unknown) => `/${String(segment).replaceAll('~', '~0').replaceAll('/', '~1')}`;

/** ajv's errors with a JSON pointer to the offending value; a missing or extra property is pointed at itself. */
export function describeErrors(errors: ErrorObject[] | null | undefined): ValidationError[] {
  return (errors ?? []).map((error) => {
    const property = error.params.missingProperty ?? error.params.additionalProperty;
    const path = error.instancePath + (property === undefined ? '' : pointer(property));
    return { path, message: error.message ?? error.keyword, keyword: error.keyword };
  });
}

const MAX_CACHED = 500;
const cache = new Map<string, { fingerprint: string; validate: ValidateFunction }>();

/**
 * Compiled validators by schema id. The fingerprint names the versions (id and updatedAt) of the
 * schema and of every schema it references, so a change to any of them, on any replica, recompiles.
 */
export const validators = {
  get(schemaId: string, fingerprint: string): ValidateFunction | undefined {
    const entry = cache.get(schemaId);
    return entry?.fingerprint === fingerprint ? entry.validate : undefined;
  },
  set(schemaId: string, fingerprint: string, validate: ValidateFunction): void {
    cache.delete(schemaId);
    if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
    cache.set(schemaId, { fingerprint, validate });
  },
  forget(schemaId: string): void {
    cache.delete(schemaId);
  },
};
