/** `jsonata`: reshapes data with a JSONata expression (the transformer of most flows). */
import type { StepFunction } from '../sdk.js';
import { evaluate, toJson } from './expressions.js';
import { mapFields } from '../../protocol/builtin-fields.js';
import { readFields } from './read-fields.js';

/**
 * Evaluates `expression` against the input's data (bindings: `$headers`, `$passthrough`,
 * `$metadata`, `$attachments`, `$message`) and emits the result; no result emits nothing. With
 * `split: true` an array result emits each element as its own output.
 */
export const map: StepFunction = async (message, fields, context) => {
  const { expression, split } = readFields(mapFields, fields, 'jsonata.map');
  const result = toJson(await evaluate(expression, message, 'expression'), 'expression');
  if (result === undefined) return;
  if (split && Array.isArray(result)) {
    for (const item of result) context.emit(item);
    return;
  }
  context.emit(result);
};
