import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { promisify } from 'node:util';
import type { BaseOptions, CompressionAlgorithmValue, SASLOptions } from '@platformatic/kafka';
import { bootstrapServers, type SluiceConfig } from '../core/config.ts';
import { ConfigError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { RetryPolicy } from '../core/retry.ts';
import { isStaleMetadata, toSluiceError, type ErrorContext } from './errors.ts';

/**
 * SluiceConfig → the client's base options: bootstrap brokers, client id, TLS,
 * SASL, timeouts and retries. Every client the seam creates (producer, admin,
 * readers, the worker's group consumer and transactional producer) starts here,
 * so a secured cluster is configured once.
 */

const run = promisify(execFile);

/** What varies between the clients of one process. */
export interface ClientSettings {
  /** Suffix of the client id (`<SLUICE_CLIENT_ID>-<name>`), e.g. `ingress`, `registry`. */
  name: string;
  retry: RetryPolicy;
  /** Overrides of the configured timeouts, for clients with a latency budget (the ingress). */
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** The timeout the broker applies to requests that carry one (e.g. how long a produce with acks=all waits for replicas). */
  brokerTimeoutMs?: number;
}

/** A failed authentication is retried at once: it fails the same way each time, so the retries end in moments instead of hanging on backoff. */
const AUTH_RETRY_DELAY_MS = 10;

function readPem(file: string, option: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ConfigError(option, `cannot read ${file}: ${(error as Error).message}`);
  }
}

/** Node TLS options from the KAFKA_SSL_* options; undefined when the protocol has no TLS. */
export function tlsOptions(config: SluiceConfig): TlsOptions | undefined {
  if (!config.kafkaSecurityProtocol.endsWith('SSL')) return undefined;
  const tls: TlsOptions = {};
  if (config.kafkaSslCaLocation !== undefined) tls.ca = readPem(config.kafkaSslCaLocation, 'KAFKA_SSL_CA_LOCATION');
  if (config.kafkaSslCertificateLocation !== undefined) tls.cert = readPem(config.kafkaSslCertificateLocation, 'KAFKA_SSL_CERTIFICATE_LOCATION');
  if (config.kafkaSslKeyLocation !== undefined) tls.key = readPem(config.kafkaSslKeyLocation, 'KAFKA_SSL_KEY_LOCATION');
  if (config.kafkaSslKeyPassword !== undefined) tls.passphrase = config.kafkaSslKeyPassword.reveal();
  // The chain is still verified; only the host name check is skipped.
  if (config.kafkaSslEndpointIdentification === 'none') tls.checkServerIdentity = () => undefined;
  return tls;
}

/** A token source read at every authentication, so a token refreshed on disk or by the command is picked up. */
function oauthToken(config: SluiceConfig): () => Promise<string> {
  const file = config.kafkaSaslOauthbearerTokenFile;
  if (file !== undefined) {
    return async () => {
      try {
        return (await readFile(file, 'utf8')).trim();
      } catch (error) {
        throw new ConfigError('KAFKA_SASL_OAUTHBEARER_TOKEN_FILE', `cannot read ${file}: ${(error as Error).message}`);
      }
    };
  }
  const command = config.kafkaSaslOauthbearerTokenCommand!;
  return async () => {
    try {
      const { stdout } = await run('/bin/sh', ['-c', command], { timeout: 30_000 });
      const token = stdout.trim();
      if (token === '') throw new Error('it printed nothing');
      return token;
    } catch (error) {
      // The command's stderr may quote the secret it used; only its exit is reported.
      const reason = (error as { code?: unknown }).code ?? (error as Error).message;
      throw new ConfigError('KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND', `the token command failed (${String(reason)})`);
    }
  };
}

/** SASL options from the KAFKA_SASL_* options; undefined when the protocol has no SASL. */
export function saslOptions(config: SluiceConfig): SASLOptions | undefined {
  const mechanism = config.kafkaSaslMechanism;
  if (!config.kafkaSecurityProtocol.startsWith('SASL_') || mechanism === undefined) return undefined;
  if (mechanism === 'OAUTHBEARER') return { mechanism, token: oauthToken(config) };
  const passwordFile = config.kafkaSaslPasswordFile;
  const password =
    passwordFile === undefined
      ? config.kafkaSaslPassword!.reveal()
      : readPem(passwordFile, 'KAFKA_SASL_PASSWORD_FILE')
          .toString('utf8')
          .replace(/\r?\n$/, '');
  return { mechanism, username: config.kafkaSaslUsername!, password };
}

/** What an error message may say about the credentials in use. */
export function errorContext(config: SluiceConfig): ErrorContext {
  const mechanism = config.kafkaSecurityProtocol.startsWith('SASL_') ? config.kafkaSaslMechanism : undefined;
  return mechanism === undefined ? {} : { sasl: { mechanism, username: config.kafkaSaslUsername } };
}

/**
 * SNI (the broker's host name in the TLS hello) for clusters addressed by name, as
 * cloud brokers route on it. Not for IP addresses: RFC 6066 forbids an IP as a
 * server name (Node warns), and Node checks the certificate against the host
 * connected to either way.
 */
function sendsServerName(config: SluiceConfig): boolean {
  return config.kafkaSslEndpointIdentification === 'https' && bootstrapServers(config).some((server) => isIP(server.replace(/:\d+$/, '')) === 0);
}

/**
 * A producer's transactional identity. Producer id and epoch -1 ("none"): the client's default, 0 and 0, is
 * refused (PRODUCER_FENCED) for an id the coordinator already knows (a second `sluice dlq replay` of a topic, a
 * replica restarted with the same SLUICE_INSTANCE_ID). With -1 the coordinator bumps the epoch, fencing any
 * other holder of the id.
 */
export function transactionalIdentity(transactionalId: string): { transactionalId: string; producerId: bigint; producerEpoch: number } {
  return { transactionalId, producerId: -1n, producerEpoch: -1 };
}

/** The options every client of the seam is built from. */
export function clientOptions(config: SluiceConfig, settings: ClientSettings): BaseOptions {
  const tls = tlsOptions(config);
  const sasl = saslOptions(config);
  const context = errorContext(config);
  const policy = settings.retry;
  return {
    clientId: `${config.clientId}-${settings.name}`,
    bootstrapBrokers: bootstrapServers(config),
    connectTimeout: settings.connectTimeoutMs ?? config.kafkaConnectTimeoutMs,
    requestTimeout: settings.requestTimeoutMs ?? config.kafkaRequestTimeoutMs,
    ...(settings.brokerTimeoutMs === undefined ? {} : { timeout: settings.brokerTimeoutMs }),
    retries: policy.retries,
    retryDelay: (client, _operation, attempt, _retries, error) => {
      // The client retries a produce refused with NOT_LEADER_OR_FOLLOWER on its cached metadata (producer.js
      // #performSingleDestinationSend forces a refresh only after network errors), so to the old leader again until
      // the cache ages out (5 s), past a request's budget while leaderships move (a rolling restart): the retry asks again.
      if (isStaleMetadata(error)) (client as { clearMetadata?: () => void }).clearMetadata?.();
      const classified = toSluiceError(error, context);
      return classified.code === 'SLUICE_KAFKA_AUTH_FAILED' ? AUTH_RETRY_DELAY_MS : policy.delayMs(attempt, classified);
    },
    ...(tls === undefined ? {} : { tls, tlsServerName: sendsServerName(config) }),
    ...(sasl === undefined ? {} : { sasl }),
  };
}

/**
 * The options of every producer the seam creates (the ingress's, the registry's, the bridges', dead-letter replays',
 * and the workers' plain and transactional outputs): the client's, plus the configured batch compression
 * (SLUICE_COMPRESSION), read here and nowhere else. Consumers need no setting: the codec is in each batch's attributes.
 */
export function producerOptions(config: SluiceConfig, settings: ClientSettings): BaseOptions & { compression: CompressionAlgorithmValue } {
  return { ...clientOptions(config, settings), compression: config.kafkaCompression };
}

/** The client's connection events, at debug in Sluice's log (the client itself logs nothing unless DEBUG=plt:kafka:*). */
export interface ClientEvents {
  on(event: string, listener: (payload: { broker?: { host: string; port: number } }) => void): unknown;
}

export function routeClientEvents(client: ClientEvents, logger: Logger): void {
  const log = logger.child({ lib: 'kafka' });
  for (const event of ['client:broker:connect', 'client:broker:disconnect', 'client:broker:failed', 'client:broker:sasl:authentication']) {
    client.on(event, (payload) => log.debug({ broker: payload?.broker ? `${payload.broker.host}:${payload.broker.port}` : undefined }, event.slice('client:'.length)));
  }
}
