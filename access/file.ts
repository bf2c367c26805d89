import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { AccessFileError } from '../core/errors.ts';
import { compileChecker, type PathPart } from '../core/schema-checker.ts';
import { GRANT_PATTERN, parseGrant, type Grant } from './permissions.ts';
import { generateKey, hashSecret, isSecretHash } from './secrets.ts';

/**
 * The access file: every principal, its credentials (hashes only) and its
 * permissions, in one YAML or JSON document checked against access.schema.json.
 *
 *   principals:
 *     - name: orders-service
 *       keys: [{ id: 3fa9c2d1, hash: "scrypt$16384$8$1$…" }]
 *       allow: [produce:/v1/orders]
 *     - name: alice
 *       password: "scrypt$16384$8$1$…"
 *       allow: [registry:write:orders.*, console:operator, read:*]
 */

export interface KeyEntry {
  readonly id: string;
  readonly hash: string;
}

export interface PrincipalEntry {
  readonly name: string;
  readonly password?: string;
  readonly keys: readonly KeyEntry[];
  readonly jwtSubject?: string;
  readonly rateLimit?: number;
  readonly grants: readonly Grant[];
}

export interface AccessFile {
  readonly file: string;
  readonly principals: readonly PrincipalEntry[];
}

export const ACCESS_SCHEMA_FILE = new URL('./access.schema.json', import.meta.url);
const checkSchema = compileChecker(JSON.parse(readFileSync(ACCESS_SCHEMA_FILE, 'utf8')) as object, 'access.schema.json');
// The schema and the permission parser must agree on what a grant is.
if (!readFileSync(ACCESS_SCHEMA_FILE, 'utf8').includes(JSON.stringify(GRANT_PATTERN).slice(1, -1))) throw new Error('access.schema.json and GRANT_PATTERN disagree');

interface RawPrincipal {
  name: string;
  password?: string;
  keys?: { id: string; hash: string }[];
  jwtSubject?: string;
  rateLimit?: number;
  allow: string[];
}

function displayName(file: string): string {
  return relative(process.cwd(), file) || file;
}

function errorAt(file: string, doc: Document, lines: LineCounter, path: PathPart[], message: string): AccessFileError {
  let node: unknown;
  for (let depth = path.length; depth >= 0 && node === undefined; depth--) {
    node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
  }
  const offset = (node as Node | undefined)?.range?.[0];
  const pos = offset === undefined ? undefined : lines.linePos(offset);
  const shown = path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
  return new AccessFileError({ file: displayName(file), line: pos?.line, column: pos?.col }, shown, message);
}

/** Parses and checks an access file's text; every error names file:line:column. */
export function parseAccessFile(file: string, text: string): AccessFile {
  const lines = new LineCounter();
  // YAML is a superset of JSON, so one parser reads both.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lines.linePos(e.pos[0]);
    throw new AccessFileError({ file: displayName(file), line: pos.line, column: pos.col }, '', e.message.split('\n')[0]!);
  }
  const value: unknown = doc.toJS();
  const problem = checkSchema(value);
  if (problem) throw errorAt(file, doc, lines, problem.path, problem.message);
  const raw = (value as { principals: RawPrincipal[] }).principals;
  const seen = new Map<string, number>();
  const keyIds = new Set<string>();
  const principals = raw.map((p, i): PrincipalEntry => {
    if (seen.has(p.name)) throw errorAt(file, doc, lines, ['principals', i, 'name'], `principal "${p.name}" is declared twice (first at principals[${seen.get(p.name)}])`);
    seen.set(p.name, i);
    if (p.password !== undefined && !isSecretHash(p.password)) throw errorAt(file, doc, lines, ['principals', i, 'password'], 'is not a scrypt hash as `sluice access add-user` writes it');
    (p.keys ?? []).forEach((k, j) => {
      if (!isSecretHash(k.hash)) throw errorAt(file, doc, lines, ['principals', i, 'keys', j, 'hash'], 'is not a scrypt hash as `sluice access add-key` writes it');
      if (keyIds.has(k.id)) throw errorAt(file, doc, lines, ['principals', i, 'keys', j, 'id'], `key id ${k.id} is used twice`);
      keyIds.add(k.id);
    });
    return {
      name: p.name,
      keys: (p.keys ?? []).map((k) => ({ id: k.id, hash: k.hash })),
      grants: p.allow.map(parseGrant),
      ...(p.password === undefined ? {} : { password: p.password }),
      ...(p.jwtSubject === undefined ? {} : { jwtSubject: p.jwtSubject }),
      ...(p.rateLimit === undefined ? {} : { rateLimit: p.rateLimit }),
    };
  });
  return { file, principals };
}

export function loadAccessFile(file: string): AccessFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new AccessFileError({ file: displayName(file) }, '', `cannot read: ${(error as Error).message}`);
  }
  return parseAccessFile(file, text);
}

/** A key as `sluice access add-key` prints it: `sk_<id>_<secret>`; the id finds the hash to check. */
export function keyId(key: string): string | undefined {
  return /^sk_([a-f0-9]{8})_[A-Za-z0-9_-]{22}$/.exec(key)?.[1];
}

export interface Addition {
  name: string;
  allow: string[];
  /** A new API key (its hash is stored); the key itself is returned once. */
  key?: boolean;
  /** A password to set (its hash is stored). */
  password?: string;
}

/**
 * Adds a key or password (and permissions) to a principal, creating the
 * principal and the file as needed. Comments and layout of the rest of the file
 * are kept; the result is checked before it replaces the file, atomically.
 */
export async function addToAccessFile(file: string, addition: Addition): Promise<{ key?: string }> {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  for (const grant of addition.allow) parseGrant(grant);
  const doc = parseDocument(text === '' ? '# Sluice access file: principals, credential hashes, permissions (see README, "Access control").\nprincipals:\n' : text);
  if (!isSeq(doc.get('principals'))) doc.set('principals', doc.createNode([]));
  const principals = doc.get('principals') as ReturnType<Document['createNode']> & { items: unknown[]; flow?: boolean };
  // An empty list is written `[]`; entries added to it read better as a block.
  if (principals.items.length === 0) principals.flow = false;
  let entry = principals.items.find((item) => isMap(item) && item.get('name') === addition.name) as (Node & { get(k: string): unknown; set(k: string, v: unknown): void }) | undefined;
  if (!entry) {
    entry = doc.createNode({ name: addition.name, allow: [] }, { flow: false }) as unknown as typeof entry & object;
    principals.items.push(entry);
  }
  const allow = (entry!.get('allow') as { items?: { value?: unknown }[] } | undefined)?.items?.map((i) => String(i.value ?? i)) ?? [];
  entry!.set('allow', doc.createNode([...new Set([...allow, ...addition.allow])], { flow: true }));
  let key: string | undefined;
  if (addition.key) {
    key = generateKey();
    const id = keyId(key)!;
    const keys = (entry!.get('keys') as { items?: unknown[] } | undefined)?.items ?? [];
    keys.push(doc.createNode({ id, hash: await hashSecret(key), created: new Date().toISOString() }, { flow: true }));
    const list = doc.createNode(keys) as { flow?: boolean };
    list.flow = false;
    entry!.set('keys', list);
  }
  if (addition.password !== undefined) entry!.set('password', await hashSecret(addition.password));
  const out = doc.toString();
  parseAccessFile(file, out);
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, out, { mode: 0o600 });
  renameSync(temp, file);
  return key === undefined ? {} : { key };
}
