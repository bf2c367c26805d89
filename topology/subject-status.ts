import { RegistryError } from '../core/errors.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import type { SchemaType } from '../core/formats/types.ts';
import { checkCompatibility, isCompatibilityLevel, type CompatibilityLevel } from '../registry/compatibility.ts';
import { explainSchemaIncompatibility, parseSchema, type ParsedSchema } from '../registry/schemas.ts';
import type { Metadata, RuleSet } from '../rules/index.ts';
import type { DeclaredContract } from './model.ts';
import type { LiveSubject } from './plan.ts';

/**
 * Where a schema stands against its subject in any Confluent-compatible
 * registry: registered or not, the subject's level, and why it could not join.
 * Shared by `sluice topology plan` and `sluice schemas check`.
 */

export interface SubjectStatus extends LiveSubject {
  /** The level the compatibility check used. */
  checkedLevel: CompatibilityLevel;
}

const path = (subject: string): string => encodeURIComponent(subject);

/** The answer, or undefined when the registry says "not found" with one of `codes`. */
async function unlessNotFound<T>(request: Promise<T>, codes: number[]): Promise<T | undefined> {
  try {
    return await request;
  } catch (error) {
    if (error instanceof RegistryError && error.statusCode === 404 && codes.includes(error.errorCode)) return undefined;
    throw error;
  }
}

async function subjectLevel(registry: RegistryClient, subject: string): Promise<CompatibilityLevel | undefined> {
  // Confluent answers 40401 or 40408 for a subject without a level of its own, depending on the version.
  const own = await unlessNotFound(registry.request<{ compatibilityLevel?: unknown }>('GET', `/config/${path(subject)}`), [40401, 40408]);
  return isCompatibilityLevel(own?.compatibilityLevel) ? own.compatibilityLevel : undefined;
}

async function globalLevel(registry: RegistryClient): Promise<CompatibilityLevel> {
  const { compatibilityLevel } = await registry.request<{ compatibilityLevel?: unknown }>('GET', '/config');
  return isCompatibilityLevel(compatibilityLevel) ? compatibilityLevel : 'BACKWARD';
}

/**
 * Checked locally against the subject's versions, for a level the subject does
 * not have yet (the plan sets it before registering).
 */
async function reasonsUnderLevel(registry: RegistryClient, subject: string, schema: string, schemaType: SchemaType, level: CompatibilityLevel): Promise<string[]> {
  const versions = await registry.request<number[]>('GET', `/subjects/${path(subject)}/versions`);
  const previous: { version: number; type: ParsedSchema }[] = [];
  for (const version of versions) {
    const resolved = await registry.resolvedSubjectVersion(subject, version);
    previous.push({ version, type: parseSchema(resolved.schemaType, resolved.schema, resolved.references) });
  }
  return checkCompatibility(level, parseSchema(schemaType, schema, []), previous, explainSchemaIncompatibility);
}

/**
 * `wantedLevel` is the level the topology file sets for the subject, if any:
 * the check is made under it, as `apply` sets it before registering.
 */
export async function subjectStatus(
  registry: RegistryClient,
  subject: string,
  schema: string,
  wantedLevel?: CompatibilityLevel,
  schemaType: SchemaType = 'AVRO',
  contract?: DeclaredContract,
): Promise<SubjectStatus> {
  // A declared contract is part of the version's identity: the same schema with other rules is not registered yet.
  const body = { schema, ...(schemaType === 'AVRO' ? {} : { schemaType }), ...contract };
  const versions = await unlessNotFound(registry.request<number[]>('GET', `/subjects/${path(subject)}/versions`), [40401]);
  const own = await subjectLevel(registry, subject);
  const base = own === undefined ? {} : { compatibility: own };
  const effective = own ?? (await globalLevel(registry));
  const checkedLevel = wantedLevel ?? effective;
  if (versions === undefined || versions.length === 0) return { ...base, exists: false, registered: false, incompatibilities: [], checkedLevel };

  const found = await unlessNotFound(registry.request('POST', `/subjects/${path(subject)}`, body), [40403]);
  if (found !== undefined) return { ...base, exists: true, registered: true, incompatibilities: [], checkedLevel };
  const latestContract = contract === undefined ? undefined : contractOf(await registry.latest(subject));

  let incompatibilities: string[];
  if (checkedLevel === effective) {
    // The registry is the authority on its own level; verbose answers carry the reasons.
    const answer = await registry.request<{ is_compatible: boolean; messages?: string[] }>('POST', `/compatibility/subjects/${path(subject)}/versions?verbose=true`, body);
    incompatibilities = answer.is_compatible ? [] : answer.messages?.length ? answer.messages : [`incompatible under ${checkedLevel} (the registry gave no reason)`];
  } else {
    incompatibilities = await reasonsUnderLevel(registry, subject, schema, schemaType, checkedLevel);
  }
  return { ...base, exists: true, registered: false, incompatibilities, checkedLevel, ...(latestContract ? { latestContract } : {}) };
}

function contractOf(version: { metadata?: unknown; ruleSet?: unknown }): DeclaredContract {
  return { ...(version.metadata ? { metadata: version.metadata as Metadata } : {}), ...(version.ruleSet ? { ruleSet: version.ruleSet as RuleSet } : {}) };
}
