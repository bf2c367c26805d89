import { RE2JS } from 're2js';

/**
 * Confluent's field-path globs (metadata `tags` keys such as `**.ssn`), as
 * its clients' wildcard matcher reads them: names are dot-separated, `?` is
 * one character within a name, `*` any run within a name, `**` any run across
 * names. Matched on RE2 (linear) against whole field names, and only when a
 * schema's field tree is built, never per event.
 */

const ESCAPED = new Set(['.', '+', '{', '}', '(', ')', '|', '^', '$']);

export function globToRegex(glob: string): string {
  const src = glob.replaceAll('**.*', '**');
  let out = '';
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '*') {
      if (src[i + 1] === '*') {
        out += '.*';
        i++;
      } else out += '[^.]*';
    } else if (c === '?') out += '[^.]';
    else if (ESCAPED.has(c)) out += `\\${c}`;
    else if (c === '\\') {
      // The next character stands for itself.
      const next = src[i + 1];
      out += next === undefined ? '\\\\' : `\\${next}`;
      i++;
    } else out += c;
  }
  return out;
}

/** A glob compiled once; a glob that is no valid pattern matches nothing (as in Confluent's clients). */
export function globMatcher(glob: string): (name: string) => boolean {
  let re: RE2JS;
  try {
    re = RE2JS.compile(globToRegex(glob));
  } catch {
    return () => false;
  }
  return (name) => re.matches(name);
}
