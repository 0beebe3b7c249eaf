/** `filter`: lets an input through, or not, by a JSONata condition. */
import type { StepFunction } from '../sdk.js';
import { evaluate, truthy } from './expressions.js';
import { filterFields } from '../../protocol/builtin-fields.js';
import { readFields } from './read-fields.js';

/**
 * Evaluates `condition` against the input (with the bindings of expressions.ts): true in
 * JSONata's sense passes the input's data on unchanged, with its headers and attachments; false
 * (or no result) emits nothing.
 */
export const filter: StepFunction = async (message, fields, context) => {
  const { condition } = readFields(filterFields, fields, 'filter.filter');
  if (!truthy(await evaluate(condition, message, 'condition'))) {
    context.log.debug('filter: condition is false, input dropped', { messageId: message.id });
    return;
  }
  context.emit(message.data ?? null, { headers: message.headers ?? {}, attachments: message.attachments ?? {} });
};
