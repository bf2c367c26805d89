import { readFileSync } from 'node:fs';
import { compileChecker } from '../core/schema-checker.ts';

/** The topology file's checker: topology/topology.schema.json, the schema editors use (core/schema-checker.ts). */

export const TOPOLOGY_SCHEMA_FILE = new URL('./topology.schema.json', import.meta.url);

export const checkAgainstSchema = compileChecker(JSON.parse(readFileSync(TOPOLOGY_SCHEMA_FILE, 'utf8')) as object, 'topology.schema.json');
