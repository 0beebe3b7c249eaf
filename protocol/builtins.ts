/**
 * The built-in components, as both sides know them: what the control plane seeds into its component
 * repository at every start (control-plane/components/builtins.ts), and what a runner has the code
 * of (runner/components/, loaded by name). Definitions only: names, functions, descriptions and
 * the JSON Schema of their fields, no implementations.
 *
 * They run in STEP_WORKER_IMAGE (docker driver) or in the step worker's own process (process
 * driver), as `hookline:<name>`.
 */
import { z } from 'zod';
import { filterFields, mapFields, receiveFields, recordFields, requestFields } from './builtin-fields.js';
import { BUILTIN_MODULE_PREFIX, type ComponentFunction } from './component.js';

/** The version of Hookline's images and runners. */
export const HOOKLINE_VERSION = '0.1.0';

/** The step worker and the built-in components (scripts/build-images.ts): what built-in steps run in. */
export const STEP_WORKER_IMAGE = `hookline/step-worker:${HOOKLINE_VERSION}`;

export interface BuiltinComponent {
  /** Fixed for good, so flows may name a built-in by id and a new version updates the same row. */
  id: string;
  name: string;
  description: string;
  module: string;
  image: string;
  functions: ComponentFunction[];
}

/** A fields schema as the repository shows it: JSON Schema of what a flow node may write. */
function fieldsOf(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _, ...jsonSchema } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  return jsonSchema;
}

const builtin = (id: string, name: string, description: string, functions: ComponentFunction[]): BuiltinComponent => ({
  id,
  name,
  description,
  module: `${BUILTIN_MODULE_PREFIX}${name}`,
  image: STEP_WORKER_IMAGE,
  functions,
});

export const BUILTIN_COMPONENTS: readonly BuiltinComponent[] = [
  builtin(
    'b1000000-0000-4000-8000-000000000001',
    'webhook',
    'The first step of a webhook or schedule flow: passes on what the trigger received.',
    [
      {
        name: 'receive',
        kind: 'trigger',
        description:
          'Emits the incoming request body (a GET webhook: its query; a schedule: its times) as the data, with the request headers as the output’s headers.',
        fields: fieldsOf(receiveFields),
      },
    ],
  ),
  builtin('b1000000-0000-4000-8000-000000000002', 'http', 'HTTP requests, authenticated with the step’s credential.', [
    {
      name: 'request',
      kind: 'action',
      description:
        'Sends one request per input and emits { status, headers, body } (JSON bodies parsed). url, query, headers and body each have an …Expression twin, a JSONata expression evaluated against the input. Credential: OAUTH2 → Authorization: Bearer; API_KEY → its key in headerName (x-api-key by default); SIMPLE → Basic. 429, 5xx, network errors and timeouts are retried with backoff; another 4xx fails the input unless failOnHttpError is false.',
      fields: fieldsOf(requestFields),
    },
  ]),
  builtin('b1000000-0000-4000-8000-000000000003', 'jsonata', 'Reshapes data with JSONata.', [
    {
      name: 'map',
      kind: 'action',
      description:
        'Emits the result of a JSONata expression over the input data (bindings: $headers, $passthrough, $metadata, $attachments, $message); no result emits nothing; split: true emits each element of an array result on its own.',
      fields: fieldsOf(mapFields),
    },
  ]),
  builtin('b1000000-0000-4000-8000-000000000004', 'filter', 'Lets an input through, or not, by a condition.', [
    {
      name: 'filter',
      kind: 'action',
      description:
        'Passes the input data on unchanged when the JSONata condition is true (as $boolean sees it), and emits nothing when it is false.',
      fields: fieldsOf(filterFields),
    },
  ]),
  builtin('b1000000-0000-4000-8000-000000000005', 'debug', 'Shows what reaches a point of a flow.', [
    {
      name: 'record',
      kind: 'action',
      description: 'Logs the input data and passes it on unchanged, so the execution record shows what arrived here.',
      fields: fieldsOf(recordFields),
    },
  ]),
];
