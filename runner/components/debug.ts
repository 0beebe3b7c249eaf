/** `debug`: shows what reached a point of a flow, and changes nothing. */
import { capPayload } from '../../protocol/step-message.js';
import type { StepFunction } from '../sdk.js';
import { recordFields } from '../../protocol/builtin-fields.js';
import { readFields } from './read-fields.js';

/**
 * Logs the input's data (as execution records keep it: over 16 KiB, its start) and passes it on
 * unchanged with its headers and attachments. Outputs are recorded on the execution, so the
 * record of this step shows what arrived here.
 */
export const record: StepFunction = (message, fields, context) => {
  const { label } = readFields(recordFields, fields, 'debug.record');
  context.log.info(label ? `debug: ${label}` : 'debug', {
    messageId: message.id,
    data: capPayload(message.data),
    headers: Object.keys(message.headers ?? {}),
  });
  context.emit(message.data ?? null, { headers: message.headers ?? {}, attachments: message.attachments ?? {} });
};
