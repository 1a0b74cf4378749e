import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EMAIL, fasterPattern, ZOD_EMAIL_SOURCE } from '../../shared/load/email-pattern.ts';
import { fastCheck, UNSURE } from '../../shared/load/fast-check.ts';
import { prng } from './helpers.ts';

// The fast checks test e-mails with EMAIL in place of zod's pattern: it must accept exactly the same texts.

const ZOD = z.regexes.email;

/** Characters around every edge of the two patterns: each class, the separators, look-alikes, controls. */
const ALPHABET = [..."aZ09_'+-.@", 'é', 'ı', '\u212a', '\0', '\n', '\r', '\t', ' ', '"', '\\', ',', '😀'];

describe('EMAIL: zod’s e-mail pattern without its backtracking', () => {
  it('stands for the pattern of the zod installed (else the fast checks leave e-mails to zod)', () => {
    expect(ZOD.source).toBe(ZOD_EMAIL_SOURCE);
    expect(ZOD.flags).toBe('');
    expect(fasterPattern(ZOD)).toBe(EMAIL);
    expect(fasterPattern(new RegExp(ZOD_EMAIL_SOURCE, 'i'))).toBeUndefined();
    expect(fasterPattern(/^[a-z]+@[a-z]+$/)).toBeUndefined();
  });

  it('accepts what zod’s accepts at the edges', () => {
    const texts = [
      'a@x.co',
      "a'.b@x.co",
      "a'@x.co",
      "'a@x.co",
      '.a@x.co',
      'a.@x.co',
      'a..b@x.co',
      'a.b.c@x.co',
      '+@x.co',
      '-@x.co',
      'a@x.c',
      'a@x.c0',
      'a@-x.co',
      'a@x-.co',
      'a@x..co',
      'a@.x.co',
      'a@x.co.',
      'a@x',
      'a@@x.co',
      '@x.co',
      'a@x.co\n',
      '\na@x.co',
      'a b@x.co',
      'é@x.co',
      'a@x.cöm',
      'a@xn--bcher-kva.example',
      'frances.liskov1@example.com',
      `${'a.'.repeat(500)}a@${'b.'.repeat(500)}co`,
      '',
    ];
    for (const text of texts) expect(EMAIL.test(text), JSON.stringify(text)).toBe(ZOD.test(text));
  });

  it('accepts what zod’s accepts on random texts and on one-character changes of addresses', () => {
    const random = prng(14);
    const pick = (from: readonly string[]) => from[Math.floor(random() * from.length)] as string;
    const text = (from: readonly string[], most: number) => {
      let out = '';
      for (let n = Math.floor(random() * (most + 1)); n > 0; n--) out += pick(from);
      return out;
    };
    const local = [..."aZ09_'+-..", 'é', '@'];
    const domain = [...'aZ0-...', '_', 'é', '@'];
    const differ: string[] = [];
    let accepted = 0;
    for (let i = 0; i < 100_000; i++) {
      const shaped = `${text(local, 5)}${random() < 0.9 ? '@' : ''}${text(domain, 7)}${text(['a', 'b', '.'], 3)}`;
      const address = `${['ada', "o'neil", 'a.b', 'x_y+z'][i % 4]}@${['ex.com', 'a-b.c.org', 'x.io'][i % 3]}`;
      const at = Math.floor(random() * (address.length + 1));
      const changed = `${address.slice(0, at)}${pick(ALPHABET)}${address.slice(at + (i % 2))}`;
      for (const t of [shaped, changed, text(ALPHABET, 12)]) {
        const yes = ZOD.test(t);
        if (EMAIL.test(t) !== yes) differ.push(t);
        if (yes) accepted++;
      }
    }
    expect(differ).toEqual([]);
    // Both answers are reached often, not only refusals.
    expect(accepted).toBeGreaterThan(20_000);
  });

  it('is what the fast checks of z.email(), .email() and .regex(z.regexes.email) use, with zod’s answers', () => {
    for (const schema of [z.email(), z.string().email(), z.string().regex(z.regexes.email)]) {
      const check = fastCheck(schema);
      if (!check) throw new Error('no fast check');
      for (const text of ["o'neil.x@ex.com", "o'neil@ex.com", 'a..b@ex.com', 'a@ex.c', 'ada@ex.com ']) {
        const zod = schema.safeParse(text);
        expect(check(text), text).toBe(zod.success ? text : UNSURE);
      }
    }
    // Another pattern is tested as zod has it.
    const other = fastCheck(z.email({ pattern: /^[a-z]+@x$/ }));
    expect([other?.('ab@x'), other?.('ab@x.co')]).toEqual(['ab@x', UNSURE]);
  });
});
