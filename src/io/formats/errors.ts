/**
 * A user's data is wrong or missing (no such folder, no images, a truncated file…). The CLI prints
 * `error.message` as one line, without a stack trace: the message must name the path at fault.
 */
export class DataError extends Error {
  override name = 'DataError';
}
