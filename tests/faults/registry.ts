/** Confluent-style registry calls the fault tests make against `sluice up`'s registry. */

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

export function recordSchema(name: string, fields: string[]): string {
  return JSON.stringify({ type: 'record', name, fields: fields.map((f) => ({ name: f, type: 'string', default: '' })) });
}

/** Registers `schema` under `subject` and returns its id; throws with the registry's answer otherwise. */
export async function registerSchema(registryUrl: string, subject: string, schema: string): Promise<number> {
  const response = await fetch(`${registryUrl}/subjects/${encodeURIComponent(subject)}/versions`, {
    method: 'POST',
    headers: { 'content-type': CONTENT_TYPE },
    body: JSON.stringify({ schema }),
    signal: AbortSignal.timeout(60_000),
  });
  const body = (await response.json()) as { id?: number; message?: string };
  if (response.status !== 200 || typeof body.id !== 'number') throw new Error(`register ${subject}: ${response.status} ${JSON.stringify(body)}`);
  return body.id;
}

export async function getJson<T>(registryUrl: string, path: string): Promise<{ status: number; body: T }> {
  const response = await fetch(`${registryUrl}${path}`, { signal: AbortSignal.timeout(60_000) });
  return { status: response.status, body: (await response.json()) as T };
}

/** Every subject with its versions and their ids: what must not change across broker restarts. */
export async function registrySnapshot(registryUrl: string, subjects: string[]): Promise<Record<string, { version: number; id: number }[]>> {
  const out: Record<string, { version: number; id: number }[]> = {};
  for (const subject of subjects) {
    const { body: versions } = await getJson<number[]>(registryUrl, `/subjects/${encodeURIComponent(subject)}/versions`);
    out[subject] = [];
    for (const version of versions) {
      const { body } = await getJson<{ id: number; version: number }>(registryUrl, `/subjects/${encodeURIComponent(subject)}/versions/${version}`);
      out[subject].push({ version: body.version, id: body.id });
    }
  }
  return out;
}
