import { FileRejectedError } from '../core/errors.ts';

/** A gzip stream's failure (corrupt or cut short data) as the file's fault: the file is refused with it. */
export function asGzipError(err: unknown): unknown {
  if (err instanceof FileRejectedError) return err;
  const code = (err as { code?: string }).code ?? '';
  if (code.startsWith('Z_') || /unexpected end of file|incorrect header check|invalid/i.test(String(err))) {
    return new FileRejectedError(`gzip data is corrupt or truncated: ${(err as Error).message}`);
  }
  return err;
}
