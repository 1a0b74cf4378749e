import type { KeepValues } from './columns.ts';
import { type FileProfile, type ProfileOptions, profileFile } from './file-profile.ts';

/**
 * Profiles a file as the loader reads it by default, with quoting. When its quotes fail it (a quote that
 * never closes properly, a quoted field running over several lines) and the file read without quoting
 * gives every record the header's fields, the file has no quoting (Postgres's text format, IANA's TSV,
 * IMDb's `"Weird" Al`): that reading is its profile, and its dataset is written with `quote: false`.
 * Otherwise the quoted reading stands, its misfits saying what to do. A file whose quotes read well is
 * read once: the second reading costs only files that need it.
 */
export async function profileQuoting(
  file: string,
  snake: (name: string) => string,
  keep: KeepValues | undefined,
  options: ProfileOptions,
): Promise<FileProfile> {
  const quoted = await profileFile(file, snake, keep, options);
  const failed = quoted.quoteMisfit;
  if (failed === undefined) return quoted;
  const plain = await profileFile(file, snake, keep, { ...options, quote: false });
  if (plain.misfitCount > 0 || plain.rows === 0) return quoted;
  const where = `${failed.file ? `${failed.file} ` : ''}line ${failed.line}`;
  plain.quoting = `quoting off: ${where} opens a quote that never closes properly; read unquoted, all ${plain.rows} rows have ${plain.columns.length} fields`;
  return plain;
}
