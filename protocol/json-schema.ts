/**
 * The one way Hookline compiles a tenant's JSON Schemas (the control plane at upload and on
 * validation, step workers for output schemas): ajv with its patterns run by RE2.
 */
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import traverse from 'json-schema-traverse';
import type { RE2JS } from 're2js';
import { compileLinear, linearRegExpEngine } from './linear-regex.js';

/**
 * ajv-formats' `url` without its lookaheads, which RE2 lacks: theirs backtracks quadratically
 * (a 300 KB string held a process 14 s). The private IPv4 hosts they refused are PRIVATE_HOST_URL.
 * Both are compiled at their first use: RE2 takes tens of milliseconds over their Unicode ranges,
 * which every step worker would pay at start.
 */
const URL_FORMAT = String.raw`^(?:https?|ftp)://(?:\S+(?::\S*)?@)?(?:(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])(?:\.(?:1?\d{1,2}|2[0-4]\d|25[0-5])){2}(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4]))|(?:(?:[a-z0-9\u{00a1}-\u{ffff}]+-)*[a-z0-9\u{00a1}-\u{ffff}]+)(?:\.(?:[a-z0-9\u{00a1}-\u{ffff}]+-)*[a-z0-9\u{00a1}-\u{ffff}]+)*(?:\.(?:[a-z\u{00a1}-\u{ffff}]{2,})))(?::\d{2,5})?(?:/[^\s]*)?$`;
const PRIVATE_HOST_URL = String.raw`^(?:https?|ftp)://(?:\S+(?::\S*)?@)?(?:(?:10|127)(?:\.\d{1,3}){3}|(?:169\.254|192\.168)(?:\.\d{1,3}){2}|172\.(?:1[6-9]|2\d|3[0-1])(?:\.\d{1,3}){2})`;
let urlPatterns: { url: RE2JS; privateHost: RE2JS } | undefined;

export function urlFormat(text: string): boolean {
  urlPatterns ??= { url: compileLinear(URL_FORMAT, 'iu'), privateHost: compileLinear(PRIVATE_HOST_URL, 'iu') };
  return urlPatterns.url.test(text) && !urlPatterns.privateHost.test(text);
}

/** Draft-07 (ajv's default), every error (`allErrors`), unknown keywords allowed, ajv-formats' formats. */
export function newSchemaCompiler(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: false, code: { regExp: linearRegExpEngine } });
  addFormats(ajv);
  ajv.addFormat('url', urlFormat);
  return ajv;
}

/**
 * Compiles every `pattern` and `patternProperties` key of the schema with RE2 now, also those ajv
 * compiles only once used (a definition nothing references yet, a pattern property whose schema
 * is `{}`), so a pattern RE2 cannot run is refused when the schema is uploaded.
 */
export function checkPatterns(schema: object): void {
  traverse(schema, (node: traverse.SchemaObject) => {
    if (typeof node.pattern === 'string') compileLinear(node.pattern, 'u');
    if (node.patternProperties && typeof node.patternProperties === 'object')
      for (const key of Object.keys(node.patternProperties)) compileLinear(key, 'u');
  });
}
