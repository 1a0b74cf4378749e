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

/** Rows per table of `test/fixtures/init/shop`, as its files hold them. */
export const SHOP_ROWS = {
  categories: 8,
  customers: 30,
  deliveries: 40,
  employee_territories: 37,
  employees: 9,
  order_details: 282,
  orders: 120,
  products: 77,
  regions: 4,
  shippers: 3,
  suppliers: 12,
  territories: 52,
};
