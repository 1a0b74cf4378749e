import path from 'node:path';

/** A file's name without folders and extensions (`orders-2024-01.csv.gz` → `orders-2024-01`): `init` names its dataset after it. */
export function fileBase(file: string): string {
  let name = path.basename(file);
  if (name.endsWith('.gz')) name = name.slice(0, -3);
  return name.slice(0, name.length - path.extname(name).length);
}

/** A name without its trailing date or number: `orders-2024-01` → `orders` (empty when all digits). */
export const stemOf = (base: string) => base.replace(/[-_. ]*\d[-_. \d]*$/, '');
