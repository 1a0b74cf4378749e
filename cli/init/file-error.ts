import { FileRejectedError } from '../../shared/core/errors.ts';
import { asGzipError } from '../../shared/formats/gzip-error.ts';

/** Reading a local file fails with these when the file is at fault (gone, a folder, not ours to read). */
const UNREADABLE = new Set(['EACCES', 'EPERM', 'EISDIR', 'ENOENT', 'EIO']);

/** A failure reading the file itself as the loader's FileRejectedError; any other error as it was. */
function asFileError(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof FileRejectedError || typeof code !== 'string') return err;
  // Only zlib's own errors: a bug's message may say "invalid" too.
  if (code.startsWith('Z_')) return asGzipError(err);
  if (UNREADABLE.has(code)) return new FileRejectedError(`file cannot be read: ${(err as Error).message}`);
  return err;
}

/**
 * Why init refuses a file, by what checking or reading it threw: the loader's own message for a file
 * error (FileRejectedError, gzip data corrupt or cut short, a file that cannot be read). Anything else
 * is a bug or a setup problem, not the file's: it is thrown again, failing init.
 */
export function refusalReason(err: unknown): string {
  const fileError = asFileError(err);
  if (fileError instanceof FileRejectedError) return fileError.message;
  throw err;
}
