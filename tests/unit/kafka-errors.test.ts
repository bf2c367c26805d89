import { AuthenticationError, MultipleErrors, NetworkError, ProtocolError, ResponseError, TimeoutError } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, isErrorCode, KafkaError, ValidationError } from '../../core/errors.ts';
import { toSluiceError } from '../../kafka/errors.ts';

const protocol = (id: string, serverMessage: string | null = null): ProtocolError => new ProtocolError(id, serverMessage);

describe('client errors → Sluice codes', () => {
  it('names the mechanism and user of a failed SASL authentication, hidden under retries and a network error', () => {
    const inner = new NetworkError('Connection to b:9093 failed.', {
      cause: new AuthenticationError('SASL authentication failed.', {
        cause: protocol('SASL_AUTHENTICATION_FAILED', 'Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512'),
      }),
    });
    const error = toSluiceError(new MultipleErrors('metadata failed 3 times.', [inner, inner]), { operation: 'produce to orders', sasl: { mechanism: 'SCRAM-SHA-512', username: 'alice' } });
    expect(error).toMatchObject({ code: 'SLUICE_KAFKA_AUTH_FAILED', retryable: false, statusCode: 503 });
    expect(error.message).toMatch(/^produce to orders: SASL SCRAM-SHA-512 authentication as "alice" failed: .*invalid credentials/);
    expect(error.message).toContain('KAFKA_SASL_MECHANISM');
  });

  it.each([
    ['CONCURRENT_TRANSACTIONS', 'SLUICE_KAFKA_CONCURRENT_TRANSACTIONS', true],
    ['UNKNOWN_TOPIC_OR_PARTITION', 'SLUICE_KAFKA_UNKNOWN_TOPIC', true],
    ['TOPIC_ALREADY_EXISTS', 'SLUICE_KAFKA_TOPIC_EXISTS', false],
    ['INVALID_PRODUCER_EPOCH', 'SLUICE_KAFKA_FENCED', false],
    ['PRODUCER_FENCED', 'SLUICE_KAFKA_FENCED', false],
    ['REBALANCE_IN_PROGRESS', 'SLUICE_KAFKA_REBALANCE', true],
    ['MESSAGE_TOO_LARGE', 'SLUICE_KAFKA_RECORD_TOO_LARGE', false],
    ['TOPIC_AUTHORIZATION_FAILED', 'SLUICE_KAFKA_NOT_AUTHORIZED', false],
    ['INVALID_PARTITIONS', 'SLUICE_KAFKA_INVALID_REQUEST', false],
    ['NOT_LEADER_OR_FOLLOWER', 'SLUICE_BROKER_UNAVAILABLE', true],
    ['COORDINATOR_LOAD_IN_PROGRESS', 'SLUICE_BROKER_UNAVAILABLE', true],
    ['UNSUPPORTED_VERSION', 'SLUICE_KAFKA_ERROR', false],
  ])('a broker answering %s is %s (retryable: %s)', (id, code, retryable) => {
    const error = toSluiceError(new ResponseError(0, 9, { '/topics/0/partitions/0': [protocol(id).apiCode as number, null] }, {}));
    expect(error).toBeInstanceOf(KafkaError);
    expect(error).toMatchObject({ code, retryable, kafkaCode: id });
  });

  it('treats connection failures and timeouts as a broker that is unavailable', () => {
    const refused = new NetworkError('Connection to 127.0.0.1:1 failed.', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }) });
    expect(toSluiceError(refused)).toMatchObject({ code: 'SLUICE_BROKER_UNAVAILABLE', retryable: true, statusCode: 503 });
    expect(toSluiceError(refused).message).toContain('ECONNREFUSED');
    expect(toSluiceError(new TimeoutError('Request timed out'))).toMatchObject({ code: 'SLUICE_BROKER_UNAVAILABLE', retryable: true });
  });

  it('makes a TLS failure fatal and says which options to check', () => {
    const tls = new NetworkError('Connection to b:9093 failed.', { cause: Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }) });
    const error = toSluiceError(tls);
    expect(error).toMatchObject({ code: 'SLUICE_KAFKA_TLS_FAILED', retryable: false });
    expect(error.message).toContain('KAFKA_SSL_');
  });

  it('passes Sluice errors through and still classifies anything else', () => {
    const own = new ValidationError([{ path: 'x', message: 'bad' }]);
    expect(toSluiceError(own)).toBe(own);
    expect(toSluiceError(new Error('odd'))).toMatchObject({ code: 'SLUICE_KAFKA_ERROR', retryable: false });
  });

  it('only ever produces codes from the closed list', () => {
    expect(ERROR_CODES).toContain('SLUICE_KAFKA_AUTH_FAILED');
    expect(isErrorCode('SLUICE_KAFKA_AUTH_FAILED')).toBe(true);
    expect(isErrorCode('SLUICE_REGISTRY_40401')).toBe(true);
    expect(isErrorCode('SLUICE_MADE_UP')).toBe(false);
  });
});
