import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { keyId } from '../../access/file.ts';
import { generateKey, hashSecret } from '../../access/secrets.ts';

export interface TestPrincipal {
  name: string;
  allow: string[];
  password?: string;
  rateLimit?: number;
}

export interface TestAccess {
  file: string;
  /** Each principal's API key, by name. */
  keys: Record<string, string>;
}

/** Writes an access file where every principal has one API key (and its password, if given). */
export async function writeAccessFile(principals: TestPrincipal[], dir = mkdtempSync(join(tmpdir(), 'sluice-access-'))): Promise<TestAccess> {
  const keys: Record<string, string> = {};
  const entries = [];
  for (const p of principals) {
    const key = generateKey();
    keys[p.name] = key;
    entries.push({
      name: p.name,
      keys: [{ id: keyId(key)!, hash: await hashSecret(key, { N: 1024, r: 8, p: 1 }) }],
      ...(p.password === undefined ? {} : { password: await hashSecret(p.password, { N: 1024, r: 8, p: 1 }) }),
      ...(p.rateLimit === undefined ? {} : { rateLimit: p.rateLimit }),
      allow: p.allow,
    });
  }
  const file = join(dir, 'access.yaml');
  writeFileSync(file, stringify({ principals: entries }));
  return { file, keys };
}

export const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });
export const basic = (user: string, password: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
