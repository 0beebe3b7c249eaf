import type { StepSpec } from '../../protocol/fleet.js';
import { newSchemaCompiler } from '../../protocol/json-schema.js';

/** Checks an output's data against the step's output schema: null when it conforms, else what is wrong. */
export type OutputCheck = (data: unknown) => string | null;

/** Compiles the step's output schema once (the control plane sent it with every schema it references). */
export function compileOutputSchema(schema: StepSpec['outputSchema']): OutputCheck | null {
  if (!schema) return null;
  const ajv = newSchemaCompiler();
  for (const value of Object.values(schema.schemas)) ajv.addSchema(value as object);
  const validate = ajv.getSchema(schema.id);
  if (!validate) throw new Error(`output schema ${schema.id} is not among the schemas given`);
  return (data) => {
    if (validate(data)) return null;
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword}`);
    return `does not match the output schema ${schema.id}: ${problems.join('; ')}`;
  };
}
