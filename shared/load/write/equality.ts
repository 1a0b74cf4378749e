import { type RawBuilder, sql } from 'kysely';

/**
 * Whether a column's type has an equality an upsert's "unchanged" test (`is distinct from`) can use:
 * Postgres's own notion, the equality of the type's default btree or hash operator class (what arrays,
 * composites and `distinct` use). json, xml and point have none; box's `=` compares areas, which is no
 * equality. An array needs it of its element, a composite of every field, a domain of its base type,
 * so the test follows those down to the types they are made of and asks it of each.
 */

/**
 * SQL: true when the type whose oid `type` is (an expression of the query it is part of) has an
 * equality. An operator class serves a type when it is declared for it, for a type it is implicitly
 * binary coercible to (varchar to text; not xml, whose cast to text is not implicit), or for the
 * polymorphic type of its kind (an enum, a range).
 */
export function hasEquality(type: RawBuilder<unknown>): RawBuilder<boolean> {
  return sql<boolean>`not exists (
    with recursive part(oid) as (
      select ${type}
      union
      select inner_part.oid from part join pg_type pt on pt.oid = part.oid
      cross join lateral (
        select pt.typbasetype where pt.typtype = 'd'
        union all select pt.typelem where pt.typsubscript = 'array_subscript_handler'::regproc
        union all select fa.atttypid from pg_attribute fa
          where pt.typtype = 'c' and fa.attrelid = pt.typrelid and fa.attnum > 0 and not fa.attisdropped
      ) as inner_part(oid)
    )
    select 1 from part join pg_type lt on lt.oid = part.oid
    where lt.typtype not in ('d', 'c') and lt.typsubscript <> 'array_subscript_handler'::regproc
      and not exists (
        select 1 from pg_opclass o join pg_am am on am.oid = o.opcmethod
        where o.opcdefault and am.amname in ('btree', 'hash')
          and (o.opcintype = lt.oid
            or (lt.typtype = 'e' and o.opcintype = 'anyenum'::regtype)
            or (lt.typtype = 'r' and o.opcintype = 'anyrange'::regtype)
            or (lt.typtype = 'm' and o.opcintype = 'anymultirange'::regtype)
            or exists (select 1 from pg_cast c
              where c.castsource = lt.oid and c.casttarget = o.opcintype and c.castmethod = 'b' and c.castcontext = 'i'))))`;
}
