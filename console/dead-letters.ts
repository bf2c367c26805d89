import type { FastifyInstance } from 'fastify';
import { deadLetterSummary, readDeadLetters, replayDeadLetters } from '../consumers/dead-letters.ts';
import { DeadLetterReplayError, NotFoundError, SluiceError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { Kafka, KafkaAdmin } from '../kafka/index.ts';

/**
 * The console's dead letters: the same reading and replaying as `sluice dlq
 * inspect|replay` (consumers/dead-letters.ts), over HTTP. Replaying is the
 * console's one action that changes things, so it is an operator's (the route
 * table), and, as every write from the page, it carries the session's CSRF token.
 * The replay ledger makes a second replay of a letter a no-op, from the console
 * and the CLI alike.
 */

export interface DeadLetterDeps {
  kafka: Kafka;
  admin: KafkaAdmin;
  logger: Logger;
}

/** SLUICE_CONSOLE_DLQ_SUFFIX: the topics the page offers a dead-letter view of (the API reads any topic as dead letters, as the CLI does). */
export const isDeadLetterTopic = (topic: string, suffix: string): boolean => topic.endsWith(suffix) && topic.length > suffix.length;

const badRequest = (message: string) => new SluiceError('SLUICE_BAD_REQUEST', message, { statusCode: 400 });

/** `{offsets?: ["<partition>:<offset>", ...]}` → the letters to replay (undefined: every unreplayed one). */
export function replaySelection(body: unknown): Set<string> | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body !== 'object' || Array.isArray(body)) throw badRequest('the body must be a JSON object: {"offsets": ["<partition>:<offset>", ...]}');
  for (const field of Object.keys(body)) if (field !== 'offsets') throw badRequest(`unknown field "${field}" (only "offsets")`);
  const { offsets } = body as { offsets?: unknown };
  if (offsets === undefined) return undefined;
  if (!Array.isArray(offsets) || offsets.length === 0) throw badRequest('offsets must be a non-empty array of "<partition>:<offset>" (leave it out to replay every dead letter)');
  const selected = new Set<string>();
  offsets.forEach((entry, i) => {
    const match = typeof entry === 'string' ? /^(\d{1,9}):(\d{1,19})$/.exec(entry) : null;
    if (!match) throw badRequest(`offsets[${i}] must be "<partition>:<offset>", e.g. "0:42"; got ${JSON.stringify(entry)}`);
    // Canonical numbers: "0:007" is "0:7".
    selected.add(`${Number(match[1])}:${BigInt(match[2]!)}`);
  });
  return selected;
}

export function registerDeadLetterRoutes(app: FastifyInstance, deps: DeadLetterDeps): void {
  const { kafka, admin } = deps;

  // Checked first: a replay of a topic that does not exist would create its ledger topic.
  const requireTopic = async (topic: string): Promise<void> => {
    if (!(await admin.listTopics()).includes(topic)) throw new NotFoundError(`topic ${topic} does not exist`);
  };

  app.get<{ Params: { topic: string } }>('/api/dlq/:topic', async (request) => {
    const { topic } = request.params;
    await requireTopic(topic);
    const letters = await readDeadLetters({ kafka, admin, log: deps.logger, topic });
    return { topic, letters: letters.map(deadLetterSummary) };
  });

  app.post<{ Params: { topic: string }; Body: unknown }>('/api/dlq/:topic/replay', async (request) => {
    const { topic } = request.params;
    const selected = replaySelection(request.body);
    await requireTopic(topic);
    const seen = new Set<string>();
    try {
      const result = await replayDeadLetters({
        kafka,
        admin,
        log: deps.logger,
        topic,
        dryRun: false,
        ...(selected === undefined
          ? {}
          : {
              filter: (letter) => {
                const key = `${letter.partition}:${letter.offset}`;
                seen.add(key);
                return selected.has(key);
              },
            }),
      });
      const answer = {
        replayed: result.replayed.length,
        alreadyReplayed: result.alreadyReplayed.length,
        // Asked for, but no dead letter on the topic has that partition and offset.
        notFound: selected === undefined ? [] : [...selected].filter((key) => !seen.has(key)),
      };
      deps.logger.info({ topic, principal: request.principal?.name, ...answer }, 'dead letters replayed from the console');
      return answer;
    } catch (error) {
      // A letter without its original topic cannot go back: nothing was replayed, and the caller can do nothing about it here.
      if (error instanceof DeadLetterReplayError) throw new SluiceError('SLUICE_DLQ_REPLAY', error.message.replace(/; name the target with --to$/, ''), { statusCode: 409 });
      throw error;
    }
  });
}
