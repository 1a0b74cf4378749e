import { snakeCase as changeCaseSnake } from 'change-case';

/**
 * A field name as a snake_case column name: `customerID` → `customer_id`, `HTTPStatus` → `http_status`,
 * `unit price` → `unit_price`, `Product-Name` → `product_name`. Digits stay with their word
 * (`address2`, `line2Total` → `line2_total`). This is change-case's `snakeCase`: lodash's and
 * es-toolkit's agree on every example above but split digits off (`address_2`), which no hand-written
 * schema names a column. Used by the `columnNames: 'snake_case'` option (and exported, for migrations).
 *
 * It keeps letters as they are (`Müller` → `müller`, `2024 total` → `2024_total`): the loader quotes
 * every column, so tables made with those names load, and a dataset must keep mapping its headers to
 * the columns it was deployed with. `dropload init` names its columns with `snakeIdentifier` instead.
 */
export function snakeCase(name: string): string {
  return changeCaseSnake(name);
}

/**
 * `snakeCase` made a SQL identifier the dataset spec accepts (ASCII letters, digits, `_`, not led by a
 * digit), as dlt's naming makes them: accents dropped (`fünny` → `funny`), any other character a
 * separator (`Straße` → `stra_e`), a leading digit behind `_` (`08-orders` → `_08_orders`). `dropload
 * init` names its tables and columns so; where that differs from `snakeCase`, the dataset it writes
 * names the column in `columns`.
 */
export function snakeIdentifier(name: string): string {
  const ascii = name.normalize('NFKD').replace(/[\u0300-\u036f]/g, '');
  const snake = changeCaseSnake(ascii.replace(/[^A-Za-z0-9]+/g, ' '));
  return /^[0-9]/.test(snake) ? `_${snake}` : snake;
}
