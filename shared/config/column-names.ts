import { snakeCase as changeCaseSnake } from 'change-case';

/**
 * A field name as a snake_case column name: `customerID` → `customer_id`, `HTTPStatus` → `http_status`,
 * `unit price` → `unit_price`, `Product-Name` → `product_name`. Digits stay with their word
 * (`address2`, `line2Total` → `line2_total`). This is change-case's `snakeCase`: lodash's and
 * es-toolkit's agree on every example above but split digits off (`address_2`), which no hand-written
 * schema names a column. Used by the `columnNames: 'snake_case'` option and by `dropload init`, so the
 * generated table and the loader agree.
 */
export function snakeCase(name: string): string {
  // Always a SQL identifier the dataset spec accepts (ASCII letters, digits, `_`, not led by a digit), as
  // dlt's naming makes them: accents dropped (`fünny` → `funny`), any other character a separator, a
  // leading digit behind `_` (`08-orders` → `_08_orders`).
  const ascii = name.normalize('NFKD').replace(/[\u0300-\u036f]/g, '');
  const snake = changeCaseSnake(ascii.replace(/[^A-Za-z0-9]+/g, ' '));
  return /^[0-9]/.test(snake) ? `_${snake}` : snake;
}
