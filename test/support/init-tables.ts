import { profileFile } from '../../cli/init/file-profile.ts';
import { type InferredTable, inferTable } from '../../cli/init/tables.ts';
import { snakeIdentifier } from '../../shared/config/column-names.ts';
import type { TempFolder } from './temp-folder.ts';

/** The files (name → text), written into `folder`, and their tables as `init` infers them: each knowing the others' names. */
export async function inferredTables(
  folder: TempFolder,
  files: Record<string, string>,
): Promise<InferredTable[]> {
  const profiles = [];
  for (const [name, text] of Object.entries(files))
    profiles.push(await profileFile(await folder.file(name, text), snakeIdentifier));
  const names = profiles.map((p) => snakeIdentifier(p.base));
  return profiles.map((p, i) => inferTable(p, snakeIdentifier, names.toSpliced(i, 1)));
}
