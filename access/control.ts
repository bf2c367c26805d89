import type { SluiceConfig } from '../core/config.ts';
import { Authenticator } from './authenticate.ts';
import { loadAccessFile } from './file.ts';

/**
 * Who is checked, per process: the access file named by SLUICE_ACCESS_FILE, read
 * once (the services of one `sluice up` share it), or open when there is none.
 */
export interface AccessControl {
  /** No access file: everyone may do everything (loopback only, see http.ts). */
  readonly open: boolean;
  readonly authenticator?: Authenticator;
}

const loaded = new Map<string, AccessControl>();

export function accessControl(config: Pick<SluiceConfig, 'accessFile' | 'oidcJwksUrl' | 'oidcIssuer' | 'oidcAudience'>): AccessControl {
  if (config.accessFile === undefined) return { open: true };
  const key = `${config.accessFile}\n${config.oidcJwksUrl ?? ''}`;
  let control = loaded.get(key);
  if (!control) {
    // loadConfig refuses a JWKS URL without an issuer and an audience.
    const oidc = config.oidcJwksUrl === undefined ? undefined : { jwksUrl: config.oidcJwksUrl, issuer: config.oidcIssuer ?? '', audience: config.oidcAudience ?? '' };
    control = { open: false, authenticator: new Authenticator(loadAccessFile(config.accessFile), oidc) };
    loaded.set(key, control);
  }
  return control;
}
