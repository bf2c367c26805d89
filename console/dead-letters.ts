import type { FastifyInstance } from 'fastify';
import { DEAD_LETTER_PAGE_MAX, readDeadLetterPage, replayDeadLetters, type DeadLetterPosition } from '../consumers/dead-letters.ts';
import type { Principal } from '../access/permissions.ts';
import { BadRequestError, DeadLetterReplayError, ForbiddenError, NotFoundError } from '../core/errors.ts';
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
  /** Whether a topic is a dead-letter topic (the suffix rule, or the topology's `deadLetter` topics): the only topics these routes read or replay. */
  isDeadLetterTopic(topic: string): boolean;
  /** Where a replay of a dead-letter topic may write (replayTargets of the topology). */
  replayTargets(topic: string): ReadonlySet<string>;
  /** Why `principal` may not write to `topic`, or undefined when it may (see mayProduceTo). */
  cannotProduceTo(principal: Principal | undefined, topic: string): string | undefined;
}

/** SLUICE_CONSOLE_DLQ_SUFFIX: the naming rule of dead-letter topics (`orders.placed.dlq`). */
export const isDeadLetterTopic = (topic: string, suffix: string): boolean => topic.endsWith(suffix) && topic.length > suffix.length;

export const DEAD_LETTER_PAGE_DEFAULT = 50;

const badRequest = (message: string) => new BadRequestError(message);

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

/** `?from=<partition>:<offset>&limit=<n>` of GET /api/dlq/:topic; a bad value is a 400 naming it. */
export function pageQuery(query: Record<string, unknown>): { from?: DeadLetterPosition; limit: number } {
  for (const name of Object.keys(query)) if (name !== 'from' && name !== 'limit') throw badRequest(`unknown query parameter ${JSON.stringify(name.slice(0, 100))} (only "from" and "limit")`);
  const { from, limit } = query as { from?: string; limit?: string };
  let position: DeadLetterPosition | undefined;
  if (from !== undefined) {
    const match = /^(\d{1,9}):(\d{1,19})$/.exec(from);
    if (!match) throw badRequest(`from must be "<partition>:<offset>" (the "next" of the previous page); got ${JSON.stringify(from.slice(0, 100))}`);
    position = { partition: Number(match[1]), offset: BigInt(match[2]!) };
  }
  if (limit !== undefined && (!/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > DEAD_LETTER_PAGE_MAX)) {
    throw badRequest(`limit must be a whole number from 1 to ${DEAD_LETTER_PAGE_MAX}; got ${JSON.stringify(limit.slice(0, 100))}`);
  }
  return { ...(position === undefined ? {} : { from: position }), limit: limit === undefined ? DEAD_LETTER_PAGE_DEFAULT : Number(limit) };
}

export function registerDeadLetterRoutes(app: FastifyInstance, deps: DeadLetterDeps): void {
  const { kafka, admin } = deps;

  // Checked first: only dead-letter topics are read here, and a replay of a topic that does not exist would create its ledger topic.
  const requireTopic = async (topic: string): Promise<void> => {
    if (!deps.isDeadLetterTopic(topic))
      throw badRequest(`topic ${JSON.stringify(topic.slice(0, 249))} is not a dead-letter topic (its name must end in SLUICE_CONSOLE_DLQ_SUFFIX, or the topology must name it a deadLetter)`);
    if (!(await admin.listTopics()).includes(topic)) throw new NotFoundError(`topic ${topic} does not exist`);
  };

  // One page at a time (`next` says where the following one starts): a topic of any size costs a page of memory.
  app.get<{ Params: { topic: string }; Querystring: Record<string, unknown> }>('/api/dlq/:topic', async (request) => {
    const { topic } = request.params;
    const page = pageQuery(request.query);
    await requireTopic(topic);
    const { letters, next } = await readDeadLetterPage({ kafka, admin, log: deps.logger, topic, ...page });
    return { topic, letters, next: next === undefined ? null : `${next.partition}:${next.offset}` };
  });

  app.post<{ Params: { topic: string }; Body: unknown }>('/api/dlq/:topic/replay', async (request) => {
    const { topic } = request.params;
    const selected = replaySelection(request.body);
    await requireTopic(topic);
    const targets = deps.replayTargets(topic);
    // A replay writes to its targets: the operator must be allowed to write there, not only to replay.
    for (const target of targets) {
      const reason = deps.cannotProduceTo(request.principal, target);
      if (reason !== undefined) throw new ForbiddenError(`replaying ${topic} writes to ${target}: ${reason}`);
    }
    const seen = new Set<string>();
    try {
      const result = await replayDeadLetters({
        kafka,
        admin,
        log: deps.logger,
        topic,
        // Back only where the topology says this topic's letters come from, whatever a letter's header claims.
        targets,
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
      // A letter without its original topic, or naming one its letters do not come from, cannot go back: nothing was replayed.
      if (error instanceof DeadLetterReplayError) throw new DeadLetterReplayError(error.message.replace(/; name the target with --to$/, ''));
      throw error;
    }
  });
}
