// An error a backend route answers with its own HTTP status and `{detail}`.
export class HttpError extends Error {
  /** @param {number} status @param {string} message @param {{ headers?: Record<string, string> }} [extra] */
  constructor(status, message, { headers } = {}) {
    super(message);
    this.status = status;
    if (headers) this.headers = headers;
  }
}
