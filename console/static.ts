import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';

/** The console's page: plain files served as they are (no build step, nothing from a CDN). */
const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/diff.js': { file: 'diff.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

export function registerStatic(app: FastifyInstance): void {
  const dir = new URL('./public/', import.meta.url);
  for (const [path, { file, type }] of Object.entries(FILES)) {
    app.get(path, async (_request, reply) =>
      reply
        .type(type)
        .header('cache-control', 'no-cache')
        .send(await readFile(new URL(file, dir))),
    );
  }
}
