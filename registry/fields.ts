import { RegistryError } from '../core/errors.ts';

/**
 * Confluent's registry ignores a body's fields it does not know; Sluice refuses them (422 naming each), since a
 * field dropped without a word is a change the caller never hears of: a typo such as `ruleset` would register a
 * version without its rules, `compatibilty` would leave the level as it was.
 */
export function refuseUnknownFields(body: unknown, known: ReadonlySet<string>, where = 'the request body'): void {
  // A body that is no object has no fields: what parses it refuses it for that.
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return;
  const unknown = Object.keys(body).filter((key) => !known.has(key));
  if (unknown.length === 0) return;
  const names = unknown.map((key) => JSON.stringify(key)).join(', ');
  throw new RegistryError(422, `Unknown field${unknown.length > 1 ? 's' : ''} ${names} in ${where} (known: ${[...known].join(', ')})`);
}
