import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { MultipleErrors, ProtocolError } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.ts';
import { ConfigError } from '../../core/errors.ts';
import { retryPolicies } from '../../core/retry.ts';
import { clientOptions, producerOptions } from '../../kafka/client-options.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-conn-'));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n');
const cert = file('client.pem', '-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n');
const key = file('client.key', '-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n');
const passwordFile = file('password', 's3cret-from-file\n');
const tokenFile = file('token', 'token-from-file\n');

const settings = { name: 'test', retry: retryPolicies.admin };

describe('SluiceConfig → client options', () => {
  it('maps brokers, client id, timeouts and retries for a plaintext cluster', () => {
    const options = clientOptions(loadConfig({ KAFKA_BROKERS: 'a:9092,b:9093', SLUICE_CLIENT_ID: 'svc', SLUICE_KAFKA_CONNECT_TIMEOUT_MS: '1500' }), settings);
    expect(options).toMatchObject({ clientId: 'svc-test', bootstrapBrokers: ['a:9092', 'b:9093'], connectTimeout: 1500, requestTimeout: 30000, retries: 8 });
    expect(options.tls).toBeUndefined();
    expect(options.sasl).toBeUndefined();
  });

  it('gives every producer the configured batch compression (SLUICE_COMPRESSION, default none), and refuses an unknown codec naming the option', () => {
    expect(producerOptions(loadConfig({ KAFKA_BROKERS: 'a:9092' }), settings).compression).toBe('none');
    for (const codec of ['gzip', 'snappy', 'lz4', 'zstd']) {
      const options = producerOptions(loadConfig({ KAFKA_BROKERS: 'a:9092', SLUICE_COMPRESSION: codec }), settings);
      expect(options).toMatchObject({ compression: codec, clientId: 'sluice-test', bootstrapBrokers: ['a:9092'] });
    }
    expect(() => loadConfig({ SLUICE_COMPRESSION: 'brotli' })).toThrow(/SLUICE_COMPRESSION.*expected one of none, gzip, snappy, lz4, zstd/);
  });

  it('lets a client with a latency budget override the timeouts', () => {
    const options = clientOptions(loadConfig({}), { ...settings, connectTimeoutMs: 300, requestTimeoutMs: 700, brokerTimeoutMs: 500 });
    expect(options).toMatchObject({ connectTimeout: 300, requestTimeout: 700, timeout: 500 });
  });

  it('reads the PEM files for mutual TLS and checks host names unless told not to', () => {
    const env = { KAFKA_BROKERS: 'kafka-1.example.com:9093', KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_LOCATION: ca, KAFKA_SSL_CERTIFICATE_LOCATION: cert, KAFKA_SSL_KEY_LOCATION: key };
    const options = clientOptions(loadConfig(env), settings);
    expect(String(options.tls?.ca)).toContain('CA');
    expect(String(options.tls?.cert)).toContain('CLIENT');
    expect(String(options.tls?.key)).toContain('KEY');
    expect(options.tls?.checkServerIdentity).toBeUndefined();
    expect(options.tlsServerName).toBe(true);
    const lax = clientOptions(loadConfig({ ...env, KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM: 'none' }), settings);
    expect(lax.tls?.checkServerIdentity?.('broker', {} as never)).toBeUndefined();
    expect(lax.tlsServerName).toBe(false);
    // Brokers by IP address: no SNI (RFC 6066), the certificate is still checked against the address.
    const byAddress = clientOptions(loadConfig({ ...env, KAFKA_BROKERS: '127.0.0.1:9093,10.0.0.2:9093' }), settings);
    expect(byAddress.tlsServerName).toBe(false);
    expect(byAddress.tls?.checkServerIdentity).toBeUndefined();
  });

  it('uses the system CAs for SSL without a CA file', () => {
    expect(clientOptions(loadConfig({ KAFKA_SECURITY_PROTOCOL: 'SSL' }), settings).tls).toEqual({});
  });

  it.each(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'])('configures SASL %s with a password or a password file', (mechanism) => {
    const base = { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: mechanism, KAFKA_SASL_USERNAME: 'alice' };
    expect(clientOptions(loadConfig({ ...base, KAFKA_SASL_PASSWORD: 'pw' }), settings).sasl).toEqual({ mechanism, username: 'alice', password: 'pw' });
    expect(clientOptions(loadConfig({ ...base, KAFKA_SASL_PASSWORD_FILE: passwordFile }), settings).sasl).toEqual({ mechanism, username: 'alice', password: 's3cret-from-file' });
  });

  it('reads an OAUTHBEARER token from a file or a command at each authentication', async () => {
    const fromFile = clientOptions(loadConfig({ KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_MECHANISM: 'OAUTHBEARER', KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: tokenFile }), settings);
    expect(fromFile.sasl?.mechanism).toBe('OAUTHBEARER');
    expect(await (fromFile.sasl?.token as () => Promise<string>)()).toBe('token-from-file');
    const fromCommand = clientOptions(loadConfig({ KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_MECHANISM: 'OAUTHBEARER', KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND: 'echo tok-123' }), settings);
    expect(await (fromCommand.sasl?.token as () => Promise<string>)()).toBe('tok-123');
    const failing = clientOptions(
      loadConfig({ KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_MECHANISM: 'OAUTHBEARER', KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND: 'echo leaked-secret >&2; exit 3' }),
      settings,
    );
    const error = await (failing.sasl?.token as () => Promise<string>)().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(String((error as Error).message)).not.toContain('leaked-secret');
  });

  it('names the option whose file cannot be read', () => {
    expect(() => clientOptions(loadConfig({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_LOCATION: join(dir, 'missing.pem') }), settings)).toThrowError(/KAFKA_SSL_CA_LOCATION: cannot read/);
  });

  it('retries a failed authentication at once and anything else with the policy', () => {
    const options = clientOptions(loadConfig({}), settings);
    const delay = options.retryDelay as (client: unknown, op: string, attempt: number, retries: number, error: Error) => number;
    const auth = Object.assign(new Error('Connection to a:1 failed.'), { code: 'PLT_KFK_NETWORK', cause: Object.assign(new Error('SASL authentication failed.'), { code: 'PLT_KFK_AUTHENTICATION' }) });
    expect(delay({}, 'metadata', 3, 8, auth)).toBe(10);
    expect(delay({}, 'metadata', 3, 8, Object.assign(new Error('down'), { code: 'PLT_KFK_NETWORK' }))).toBe(retryPolicies.admin.delayMs(3));
  });

  it('drops the cached metadata before retrying after a stale-metadata answer (NOT_LEADER_OR_FOLLOWER), and only then', () => {
    const options = clientOptions(loadConfig({}), settings);
    const delay = options.retryDelay as (client: unknown, op: string, attempt: number, retries: number, error: Error) => number;
    let cleared = 0;
    const client = { clearMetadata: () => cleared++ };
    const notLeader = new MultipleErrors('Producing messages failed.', [new ProtocolError('NOT_LEADER_OR_FOLLOWER')]);
    delay(client, 'produce', 1, 8, notLeader);
    expect(cleared).toBe(1);
    delay(client, 'produce', 2, 8, new ProtocolError('CONCURRENT_TRANSACTIONS'));
    delay(client, 'produce', 2, 8, Object.assign(new Error('down'), { code: 'PLT_KFK_NETWORK' }));
    expect(cleared).toBe(1);
  });
});

describe('security options', () => {
  it.each([
    [{ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' }, /KAFKA_SASL_MECHANISM: required/],
    [{ KAFKA_SASL_MECHANISM: 'PLAIN' }, /KAFKA_SASL_MECHANISM: set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT/],
    [{ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_PASSWORD: 'x' }, /KAFKA_SASL_USERNAME: required/],
    [{ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'u' }, /set exactly one of KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE/],
    [{ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'OAUTHBEARER' }, /KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: set exactly one/],
    [{ KAFKA_SSL_CA_LOCATION: '/etc/ca.pem' }, /does not use TLS/],
    [{ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CERTIFICATE_LOCATION: '/c.pem' }, /needs both KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION/],
    [{ KAFKA_SECURITY_PROTOCOL: 'TLS' }, /KAFKA_SECURITY_PROTOCOL: expected one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL/],
    [{ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'GSSAPI' }, /KAFKA_SASL_MECHANISM: expected one of PLAIN/],
  ])('rejects %o', (env, message) => {
    expect(() => loadConfig(env)).toThrowError(message);
  });

  it('never prints a password: not in JSON, inspect, strings or errors', () => {
    const config = loadConfig({
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_USERNAME: 'alice',
      KAFKA_SASL_PASSWORD: 'hunter2-secret',
      KAFKA_SSL_KEY_PASSWORD: 'key-secret',
    });
    const printed = [JSON.stringify(config), inspect(config, { depth: 5 }), String(config.kafkaSaslPassword), `${config.kafkaSslKeyPassword}`].join('\n');
    expect(printed).not.toMatch(/hunter2-secret|key-secret/);
    expect(printed).toContain('[redacted]');
    expect(config.kafkaSaslPassword?.reveal()).toBe('hunter2-secret');
  });
});
