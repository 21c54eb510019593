// The one quoting helper. Role names are exact (as in pg_roles.rolname), never folded.

/** Quote an identifier the way quote_ident() does, always (so case and unicode survive). */
export function ident(name: string): string {
  if (name.includes('\0')) throw new Error('identifier contains a NUL byte');
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quote a string literal as quote_literal() does; for the few places that cannot take a parameter (DDL). */
export function literal(value: string): string {
  if (value.includes('\0')) throw new Error('literal contains a NUL byte');
  const body = value.replace(/'/g, "''");
  return body.includes('\\') ? ` E'${body.replace(/\\/g, '\\\\')}'`.trimStart() : `'${body}'`;
}

/** `'a', 'b'`: literals for an IN (...) list of constants. */
export function literalList(values: readonly string[]): string {
  return values.map(literal).join(', ');
}
