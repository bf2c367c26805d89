/**
 * Data contracts in Confluent's shapes: a schema version's `metadata` and
 * `ruleSet`, exactly as the registry API and Confluent's clients write them,
 * so a contract registered by `@confluentinc/schemaregistry` or Confluent's
 * Java, Python and Go clients reads the same here.
 */

export const RULE_KINDS = ['CONDITION', 'TRANSFORM'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

export const RULE_MODES = ['WRITE', 'READ', 'WRITEREAD', 'UPGRADE', 'DOWNGRADE', 'UPDOWN'] as const;
export type RuleMode = (typeof RULE_MODES)[number];

/** The rule types this engine runs. Confluent's clients know others (ENCRYPT, ...): a rule of another type is refused at registration rather than silently never run. */
export const RULE_TYPES = ['CEL', 'CEL_FIELD', 'JSONATA'] as const;
export type RuleType = (typeof RULE_TYPES)[number];

export const RULE_ACTIONS = ['NONE', 'ERROR', 'DLQ'] as const;
export type RuleAction = (typeof RULE_ACTIONS)[number];

/** The modes a caller runs rules in: a rule's own mode may be a pair of these (WRITEREAD, UPDOWN). */
export type RunMode = 'WRITE' | 'READ' | 'UPGRADE' | 'DOWNGRADE';

export interface Rule {
  name: string;
  doc?: string;
  kind: RuleKind;
  mode: RuleMode;
  type: RuleType;
  tags?: string[];
  params?: Record<string, string>;
  expr?: string;
  /** An action, or for WRITEREAD and UPDOWN rules a pair "onWrite,onRead" / "onUpgrade,onDowngrade". */
  onSuccess?: string;
  onFailure?: string;
  disabled?: boolean;
}

export interface RuleSet {
  migrationRules?: Rule[];
  domainRules?: Rule[];
  /** Confluent's encoding rules (run on the serialized bytes); kept and returned, not run here. */
  encodingRules?: Rule[];
  enableAt?: string;
}

export interface Metadata {
  /** Field path glob (`**.ssn`, `Order.customer.*`) to the tags its fields carry. */
  tags?: Record<string, string[]>;
  properties?: Record<string, string>;
  sensitive?: string[];
}

/** The longest rule expression accepted: parsing is linear, and this keeps one rule's compile and each evaluation small. */
export const MAX_EXPRESSION_LENGTH = 4096;

/** Where a rule's dead-letter topic is named, as Confluent reads it: the rule's params, then the version's metadata properties. */
export const DLQ_TOPIC_PARAM = 'dlq.topic';

/** Headers on a dead-lettered record, as Confluent's DlqAction names them (plus the version and, for CEL_FIELD, the field, which Confluent leaves out). */
export const RULE_HEADERS = {
  name: '__rule.name',
  mode: '__rule.mode',
  subject: '__rule.subject',
  version: '__rule.version',
  field: '__rule.field',
  topic: '__rule.topic',
  exception: '__rule.exception',
} as const;
