/**
 * `webhook`: the conventional first step of a webhook or schedule flow. It passes on what the edge
 * received, so the steps after it see the request body as their data.
 */
import type { StepFunction } from '../sdk.js';
import { receiveFields } from '../../protocol/builtin-fields.js';
import { readFields } from './read-fields.js';

/**
 * Emits the incoming message's data (the request body; a GET webhook's query; a schedule's
 * `{ scheduledAt, nextAt, firedAt }`) with its headers as the output's headers. `output: 'request'`
 * emits `{ body, method, query, url, pathSuffix, headers }` instead, for flows that route on them.
 */
export const receive: StepFunction = (message, fields, context) => {
  const { output } = readFields(receiveFields, fields, 'webhook.receive');
  const headers = message.headers ?? {};
  const data =
    output === 'body'
      ? message.data
      : {
          body: message.data,
          method: message.method ?? null,
          query: message.query ?? {},
          url: message.url ?? null,
          pathSuffix: message.pathSuffix ?? null,
          headers,
        };
  context.emit(data ?? null, { headers });
};
