/** The error envelope, as the control plane answers it. */
export const errorResponse = (status: number, message: string, code: string, headers: HeadersInit = {}) =>
  Response.json({ errors: [{ message, code }] }, { status, headers });

/** One answer for every hook URL that is not live, whatever the reason, so callers learn nothing from it. */
export const notLive = () => errorResponse(404, 'No live webhook at this URL', 'not_found');
