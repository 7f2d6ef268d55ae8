// Copying objects with added or replaced fields on hot paths, without giving each copy its own hidden class.

/**
 * `{ ...base, ...fields }` for objects made per routed message. In V8 11 (Node 20) an object spread followed by
 * more properties gives every result a hidden class of its own: the object stays fast, but it drags a map, a
 * descriptor array and an enum cache along (a few hundred bytes that survive as long as it does), and every
 * property access that sees such objects goes megamorphic. `Object.assign` onto a fresh object shares one
 * hidden class per shape.
 */
export function extend<T extends object, U extends object>(
  base: T | undefined,
  fields: U,
): Omit<T, keyof U> & U {
  return Object.assign({}, base, fields);
}
