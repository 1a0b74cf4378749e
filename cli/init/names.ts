/**
 * `customerID` → `customer_id`, `Order Date` → `order_date`, `HTTPStatus` → `http_status`.
 * TODO(i13/fields): use the loader's exported `snakeCase` once merged, so columns are named in one place.
 */
export function snakeCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .toLowerCase();
}
