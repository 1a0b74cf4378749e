/**
 * Code laid out as the repository's formatter (Biome, with biome.json: 2 spaces, 110 columns, single
 * quotes, trailing commas) would lay it out, for the few shapes `init` writes: string literals, lists
 * and `await db.schema.…().execute();` call chains. Generated files then pass `biome format` and
 * `biome check` untouched, without a formatter at run time.
 */

export const LINE_WIDTH = 110;

const fits = (line: string) => line.length <= LINE_WIDTH;
const spaces = (n: number) => ' '.repeat(n);

/**
 * A string literal: single quotes, or double quotes when the text has more single quotes than double
 * ones (as the formatter picks), with JSON's escapes for the rest.
 */
export function quote(text: string): string {
  const singles = text.split("'").length;
  const doubles = text.split('"').length;
  const body = JSON.stringify(text).slice(1, -1);
  if (singles > doubles) return `"${body}"`;
  return `'${body.replaceAll('\\"', '"').replaceAll("'", "\\'")}'`;
}

/** An argument: code printed as is, a list printed as an array literal, or an arrow function. */
export type Arg = string | readonly string[] | { fn: string };

const isList = (a: Arg): a is readonly string[] => Array.isArray(a);
const flat = (a: Arg): string => (isList(a) ? `[${a.join(', ')}]` : typeof a === 'string' ? a : a.fn);

export interface Call {
  name: string;
  args: Arg[];
}

/** A list broken one item a line, each with its trailing comma, between `open` and `close`. */
function broken(indent: number, open: string, items: readonly string[], close: string): string[] {
  return [open, ...items.map((i) => `${spaces(indent + 2)}${i},`), `${spaces(indent)}${close}`];
}

/**
 * The last argument broken open after the others, when the line up to where it opens fits: a list
 * after its `[` (unless the argument before it is a list too), an arrow function after its `=>`.
 */
function huggedLast(indent: number, call: Call, end: string): string[] | undefined {
  const pad = spaces(indent);
  const last = call.args.at(-1);
  const before = call.args.slice(0, -1).map(flat);
  const previous = call.args.at(-2);
  if (last && isList(last) && !(previous && isList(previous))) {
    const head = `${pad}.${call.name}(${[...before, '['].join(', ')}`;
    return fits(head) ? broken(indent, head, last, `])${end}`) : undefined;
  }
  if (last && typeof last === 'object' && !isList(last)) {
    const arrow = last.fn.indexOf(' => ');
    const head = `${pad}.${call.name}(${[...before, last.fn.slice(0, arrow + 3)].join(', ')}`;
    return fits(head) ? broken(indent, head, [last.fn.slice(arrow + 4)], `)${end}`) : undefined;
  }
  return undefined;
}

/**
 * One call of a broken chain, on its own line(s) at `indent`: its arguments on the line when they fit;
 * else the last one hugged (`huggedLast`); else one argument a line.
 */
function callLines(indent: number, call: Call, end: string): string[] {
  const pad = spaces(indent);
  const one = `${pad}.${call.name}(${call.args.map(flat).join(', ')})${end}`;
  if (fits(one)) return [one];
  const hugged = huggedLast(indent, call, end);
  if (hugged) return hugged;
  const args = call.args.map((a) => {
    const inline = flat(a);
    if (!isList(a) || fits(`${spaces(indent + 2)}${inline},`)) return inline;
    return broken(indent + 2, '[', a, ']').join('\n');
  });
  return broken(indent, `${pad}.${call.name}(`, args, `)${end}`);
}

/**
 * `await db.schema.a(…).b(…).execute();` at `indent`: on one line when it fits and no argument of a
 * chain of more than two calls is a function; else one call a line.
 */
export function chain(indent: number, head: string, calls: Call[]): string[] {
  const pad = spaces(indent);
  const text = (c: Call) => `.${c.name}(${c.args.map(flat).join(', ')})`;
  const hasFn = calls.some((c) => c.args.some((a) => typeof a === 'object' && !isList(a)));
  const one = `${pad}${head}${calls.map(text).join('')};`;
  if (fits(one) && !(calls.length > 2 && hasFn)) return [one];
  return [
    `${pad}${head}`,
    ...calls.flatMap((c, i) => callLines(indent + 2, c, i === calls.length - 1 ? ';' : '')),
  ];
}

/** A list on one line when it fits (as the formatter writes it), else one item a line. */
export function wrapped(indent: number, open: string, items: string[], close: string, end = ','): string[] {
  const pad = spaces(indent);
  const inner = open.endsWith('{') ? ' ' : '';
  const line = `${pad}${open}${inner}${items.join(', ')}${inner}${close}${end}`;
  if (fits(line)) return [line];
  return broken(indent, `${pad}${open}`, items, `${close}${end}`);
}

const PRIMITIVE_ITEM = /^\s*("(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*|true|false|null),?$/;

/**
 * JSON as Biome formats it (init-state.json): `JSON.stringify`'s two-space layout, with an array of
 * strings, numbers or booleans on one line where that line fits, as the formatter puts it.
 */
export function jsonText(value: unknown): string {
  const lines = JSON.stringify(value, null, 2).split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const items: string[] = [];
    let j = i + 1;
    while (line.endsWith('[') && j < lines.length && PRIMITIVE_ITEM.test(lines[j] as string))
      items.push((lines[j++] as string).trim().replace(/,$/, ''));
    const close = (lines[j] ?? '').trim();
    const joined = `${line}${items.join(', ')}${close}`;
    if (items.length > 0 && close.startsWith(']') && fits(joined)) {
      out.push(joined);
      i = j;
    } else out.push(line);
  }
  return `${out.join('\n')}\n`;
}
