/** `1 row`, `2 rows`: a count with its noun, plural unless one (the nouns init counts take an `s`). */
export const count = (n: number, noun: string): string => `${n} ${n === 1 ? noun : `${noun}s`}`;
