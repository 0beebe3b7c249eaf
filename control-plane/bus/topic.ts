import type { EventHandler, EventRoutes } from './types.js';

/** AMQP topic matching: words separated by dots, `*` matches one word, `#` zero or more. */
export function topicMatches(pattern: string, key: string): boolean {
  const p = pattern.split('.');
  const k = key.split('.');
  const match = (i: number, j: number): boolean => {
    if (i === p.length) return j === k.length;
    if (p[i] === '#') return match(i + 1, j) || (j < k.length && match(i, j + 1));
    if (j === k.length) return false;
    return (p[i] === '*' || p[i] === k[j]) && match(i + 1, j + 1);
  };
  return match(0, 0);
}

export function routeFor(routes: EventRoutes, name: string): EventHandler | undefined {
  for (const [pattern, handler] of Object.entries(routes)) if (topicMatches(pattern, name)) return handler;
  return undefined;
}
