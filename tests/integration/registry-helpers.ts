import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { loadConfig, type SluiceConfig } from '../../core/config.ts';
import { createKafka } from '../../kafka/index.ts';
import { createLogger, type Logger } from '../../core/logger.ts';

export const V1 = 'application/vnd.schemaregistry.v1+json';

/** A config on the test brokers with a registry topic of its own, so test files never share state. */
export function registryTestConfig(): { config: SluiceConfig; logger: Logger; topic: string } {
  const topic = `_schemas_test_${randomUUID().slice(0, 8)}`;
  const brokers = inject('kafkaBrokers');
  const config = loadConfig(process.env, { kafkaBrokers: brokers.join(','), registryTopic: topic, logLevel: process.env.SLUICE_TEST_LOG_LEVEL ?? 'silent' });
  return { config, logger: createLogger(config, 'registry-test'), topic };
}

export interface HttpAnswer {
  status: number;
  contentType: string | null;
  body: unknown;
  text: string;
}

export async function call(baseUrl: string, method: string, path: string, body?: unknown, contentType = V1): Promise<HttpAnswer> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: body === undefined ? { accept: V1 } : { accept: V1, 'content-type': contentType },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not every answer is JSON (a raw schema is, but a proxy error page might not be); keep the text.
  }
  return { status: response.status, contentType: response.headers.get('content-type'), body: parsed, text };
}

export const recordSchema = (name: string, fields: { name: string; type: unknown; default?: unknown }[]): string => JSON.stringify({ type: 'record', name, namespace: 'test', fields });

/** Drops a test file's registry topic so repeated runs do not pile topics up on a shared broker. */
export async function deleteRegistryTopic(config: SluiceConfig, logger: Logger, topic: string): Promise<void> {
  const admin = createKafka(config, logger, 'registry-test-cleanup').admin();
  try {
    await admin.deleteTopics([topic]);
  } finally {
    await admin.close();
  }
}
