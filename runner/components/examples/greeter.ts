/**
 * An example component, built into the image `hookline/example-greeter:1` by `npm run images`
 * (scripts/build-images.ts): its module is bundled to /component/index.mjs on top of the step
 * worker image. A flow node runs it with `function: "greet"`:
 *
 *   { "data": { "name": "Ada" } }  ->  { "greeting": "Hello, Ada!" }
 *
 * `fields.greeting` changes the word ("Hello" by default); a message without a name greets
 * `fields.defaultName` ("world" by default).
 */
import type { StepFunction } from '../../sdk.js';

export const greet: StepFunction = (message, fields, context) => {
  const data = (message.data ?? {}) as Record<string, unknown>;
  const name = typeof data.name === 'string' && data.name.trim() ? data.name.trim() : String(fields.defaultName ?? 'world');
  const greeting = `${String(fields.greeting ?? 'Hello')}, ${name}!`;
  context.log.info('greeted', { name, attempt: context.attempt });
  return { greeting };
};
