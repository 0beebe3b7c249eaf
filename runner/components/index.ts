/**
 * The code of the built-in components (their definitions are in protocol/builtins.ts): each lives
 * in a file of its own here, exporting only its step functions, and parses its fields with the
 * schemas of protocol/builtin-fields.ts.
 */
import { BUILTIN_MODULE_PREFIX } from '../../protocol/component.js';
import type { StepFunction } from '../sdk.js';

/**
 * Literal imports, one per built-in (not a computed path), so the step worker's bundle in
 * STEP_WORKER_IMAGE holds every built-in and the process driver needs no file path.
 */
const modules: Record<string, () => Promise<Record<string, StepFunction>>> = {
  webhook: () => import('./webhook.js'),
  http: () => import('./http.js'),
  jsonata: () => import('./jsonata.js'),
  filter: () => import('./filter.js'),
  debug: () => import('./debug.js'),
};

/**
 * How the step worker loads a built-in: its name (`http`), or its module reference whole
 * (`hookline:http`), gives that built-in's module, imported on first use; its exports are its
 * step functions. An unknown name is an error naming the built-ins.
 */
export function loadBuiltinModule(name: string): Promise<Record<string, StepFunction>> {
  const key = name.startsWith(BUILTIN_MODULE_PREFIX) ? name.slice(BUILTIN_MODULE_PREFIX.length) : name;
  const load = Object.hasOwn(modules, key) ? modules[key] : undefined;
  if (!load) return Promise.reject(new Error(`No built-in component "${key}": the built-ins are ${Object.keys(modules).join(', ')}`));
  return load();
}
