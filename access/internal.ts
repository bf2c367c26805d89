import { randomBytes } from 'node:crypto';
import type { SluiceConfig } from '../core/config.ts';
import { accessControl } from './control.ts';
import { scheme } from './http.ts';
import { parseGrant } from './permissions.ts';

/** The principal `sluice up`'s own services use to call its registry (register the topology's schemas, read them back). */
export const INTERNAL_PRINCIPAL = 'sluice-internal';

/**
 * The registry URL the services of this process should use for the registry it
 * runs itself: HTTPS when the listeners serve TLS, and, with an access file and
 * no credentials of the operator's own in the URL, those of a per-run internal
 * principal allowed to read and write schemas (nothing else; never written anywhere).
 */
export function internalRegistryUrl(config: SluiceConfig): string {
  const url = new URL(config.registryUrl);
  url.protocol = `${scheme(config)}:`;
  const control = accessControl(config);
  if (!control.open && url.username === '') {
    const secret = randomBytes(24).toString('base64url');
    control.authenticator!.addInternal({ name: INTERNAL_PRINCIPAL, grants: ['registry:read:*', 'registry:write:*'].map(parseGrant), rateLimit: 0 }, secret);
    url.username = INTERNAL_PRINCIPAL;
    url.password = secret;
  }
  return url.toString().replace(/\/$/, '');
}
