import { type RawBuilder, sql } from 'kysely';

/**
 * Whether a column's type has an equality an upsert's "unchanged" test (`is distinct from`) can use:
 * Postgres's own notion, the equality of the type's default btree or hash operator class (what arrays,
 * composites and `distinct` use). json, xml and point have none; box's `=` compares areas, which is no
 * equality. An array needs it of its element, a composite of every field, a domain of its base type,
 * so the test follows those down to the types they are made of and asks it of each. An enum, a range
 * and a multirange always have it (their polymorphic operator classes).
 */

/**
 * SQL: true when the type whose oid `type` is has a default btree or hash operator class of its own or
 * of a type it is implicitly binary coercible to (varchar's is text's; not xml, whose cast to text is
 * not implicit). Index lookups and a scan of the small pg_opclass: the usual column's whole test.
 */
function ownEquality(type: RawBuilder<unknown>): RawBuilder<boolean> {
  return sql<boolean>`exists (
    select 1 from pg_opclass o
    where o.opcdefault and o.opcmethod in (select am.oid from pg_am am where am.amname in ('btree', 'hash'))
      and (o.opcintype = ${type} or exists (select 1 from pg_cast c
        where c.castsource = ${type} and c.casttarget = o.opcintype and c.castmethod = 'b' and c.castcontext = 'i')))`;
}

/** SQL: true when the type whose oid `type` is is made of others (a domain, an array, a composite) or has equality by its kind. */
function composed(type: RawBuilder<unknown>): RawBuilder<boolean> {
  return sql<boolean>`exists (select 1 from pg_type t where t.oid = ${type}
    and (t.typtype in ('d', 'c', 'e', 'r', 'm') or t.typsubscript = 'array_subscript_handler'::regproc))`;
}

/**
 * SQL: true when the type whose oid `type` is (an expression of the query it is part of) has an
 * equality. Only a type without one of its own is taken apart, recursively, into the types it is made of.
 */
export function hasEquality(type: RawBuilder<unknown>): RawBuilder<boolean> {
  return sql<boolean>`case when ${ownEquality(type)} then true else not exists (
    with recursive part(oid) as (
      select ${type}
      union
      select inner_part.oid from part cross join lateral (
        select pt.typbasetype from pg_type pt where pt.oid = part.oid and pt.typtype = 'd'
        union all select pt.typelem from pg_type pt
          where pt.oid = part.oid and pt.typsubscript = 'array_subscript_handler'::regproc
        union all select fa.atttypid from pg_type pt join pg_attribute fa on fa.attrelid = pt.typrelid
          where pt.oid = part.oid and pt.typtype = 'c' and fa.attnum > 0 and not fa.attisdropped
      ) as inner_part(oid)
    )
    select 1 from part where not ${composed(sql`part.oid`)} and not ${ownEquality(sql`part.oid`)}) end`;
}
