import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { installSecurityHeaders, securityHeaders } from '../../access/security-headers.ts';
import { loadConfig } from '../../core/config.ts';

describe('security headers', () => {
  it("are helmet's, with Sluice's content security policy, and HSTS only over TLS", () => {
    const plain = securityHeaders(loadConfig({}));
    expect(plain['x-content-type-options']).toBe('nosniff');
    expect(plain['x-frame-options']).toBe('SAMEORIGIN');
    const csp = plain['content-security-policy']!.split(';');
    expect(csp).toEqual(expect.arrayContaining(["default-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:", "object-src 'none'", "frame-ancestors 'none'"]));
    expect(csp).not.toContain('upgrade-insecure-requests');
    expect(plain['strict-transport-security']).toBeUndefined();
    const tls = securityHeaders(loadConfig({ SLUICE_TLS_CERT: 'cert.pem', SLUICE_TLS_KEY: 'key.pem' }));
    expect(tls['strict-transport-security']).toMatch(/^max-age=\d+/);
    expect(tls['content-security-policy']).toContain('upgrade-insecure-requests');
  });

  it('are on every answer, routes, 404s and errors alike', async () => {
    const app = Fastify();
    installSecurityHeaders(app, loadConfig({}));
    app.get('/ok', async () => ({ ok: true }));
    app.get('/boom', async () => {
      throw new Error('boom');
    });
    for (const url of ['/ok', '/missing', '/boom']) {
      const response = await app.inject({ url });
      expect(response.headers['x-content-type-options'], url).toBe('nosniff');
      expect(response.headers['content-security-policy'], url).toContain("frame-ancestors 'none'");
    }
    await app.close();
  });
});
