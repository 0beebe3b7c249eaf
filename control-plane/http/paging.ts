import { z } from '@hono/zod-openapi';

/** OIH's paging parameters. */
export const pagingQuery = {
  'page[size]': z.coerce.number().int().min(1).max(100).default(10).openapi({ description: 'Items per page (1-100)' }),
  'page[number]': z.coerce.number().int().min(1).default(1).openapi({ description: 'Page, from 1' }),
};

export const pageMetaSchema = z
  .object({ total: z.number(), page: z.number(), perPage: z.number(), totalPages: z.number() })
  .openapi('PageMeta');

export type Paging = { 'page[size]': number; 'page[number]': number };

export function page(query: Paging) {
  const perPage = query['page[size]'];
  const number = query['page[number]'];
  return {
    limit: perPage,
    offset: (number - 1) * perPage,
    meta: (total: number) => ({ total, page: number, perPage, totalPages: Math.ceil(total / perPage) }),
  };
}

/** `sort=name` or `sort=-createdAt` over the allowed fields. */
export const sortQuery = <F extends string>(fields: readonly [F, ...F[]], fallback: string) =>
  z
    .string()
    .regex(new RegExp(`^-?(${fields.join('|')})$`), `sort must be one of ${fields.join(', ')}, with a leading - for descending`)
    .default(fallback)
    .transform((value) => ({ field: value.replace(/^-/, '') as F, descending: value.startsWith('-') }));
