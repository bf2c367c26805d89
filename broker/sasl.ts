import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalKafkaError } from '../core/errors.ts';

/**
 * The local broker's SASL user. SCRAM users live in the cluster metadata and are
 * created when the storage is formatted (kafka-storage format --add-scram); the
 * PLAIN user lives in the listener's JAAS config. One user, both ways, with the
 * password from the configuration or generated at format time and kept in the
 * data dir (mode 0600), so later starts and the tests can read it.
 */

export interface SaslUser {
  username: string;
  password: string;
}

/** Characters that survive Kafka's JAAS and --add-scram syntaxes without quoting. */
const SAFE = /^[A-Za-z0-9._~!@#$%^&*+:?/-]+$/;

function check(what: string, value: string): void {
  if (!SAFE.test(value)) throw new LocalKafkaError(`the local broker's SASL ${what} may hold only letters, digits and ._~!@#$%^&*+:?/- (no spaces, quotes, commas, brackets or =)`);
}

function credentialsFile(dir: string): string {
  return join(dir, 'sasl-user.json');
}

/** The user recorded for this data dir, when its storage was formatted with one. */
export function recordedSaslUser(dir: string): SaslUser | undefined {
  const file = credentialsFile(dir);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as SaslUser) : undefined;
}

/**
 * The user to format a new data dir with, recorded there. A configured password
 * that differs from the recorded one is an error: the SCRAM credential in the
 * metadata cannot follow it without a running broker.
 */
export function saslUser(dir: string, username: string, configuredPassword: string | undefined): SaslUser {
  check('username', username);
  if (configuredPassword !== undefined) check('password', configuredPassword);
  const recorded = recordedSaslUser(dir);
  if (recorded) {
    if (recorded.username !== username || (configuredPassword !== undefined && configuredPassword !== recorded.password)) {
      throw new LocalKafkaError(
        `the local broker in ${dir} was formatted with another SASL user or password; SCRAM users are created at format time. Unset SLUICE_KAFKA_SASL_USERNAME/SLUICE_KAFKA_SASL_PASSWORD, or stop the broker and delete ${dir} to start afresh.`,
      );
    }
    return recorded;
  }
  return { username, password: configuredPassword ?? randomBytes(18).toString('base64url') };
}

export function recordSaslUser(dir: string, user: SaslUser): void {
  writeFileSync(credentialsFile(dir), `${JSON.stringify(user)}\n`, { mode: 0o600 });
}

/** kafka-storage format arguments that create the SCRAM users. */
export function addScramArgs(user: SaslUser): string[] {
  return ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((mechanism) => ['--add-scram', `${mechanism}=[name=${user.username},password=${user.password}]`]);
}
