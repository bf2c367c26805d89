import { spawn, type ChildProcess } from 'node:child_process';
import { PROJECT_ROOT } from '../../core/config.ts';

/** `sluice tail` as a user runs it, with stdout (the records) and stderr (diagnostics) kept apart. */
export interface TailProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
  /** Resolves once stderr contains `text` (e.g. the "tailing" log line). */
  waitForStderr(text: string, timeoutMs?: number): Promise<void>;
}

export function runTail(args: string[], env: NodeJS.ProcessEnv): TailProcess {
  const child = spawn(process.execPath, ['--disable-warning=TimeoutNegativeWarning', `${PROJECT_ROOT}/bin/sluice.js`, 'tail', ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, SLUICE_LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitForStderr: (text, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (stderr.includes(text)) {
            clearInterval(timer);
            resolve();
          }
        };
        const timer = setInterval(check, 50);
        setTimeout(() => {
          clearInterval(timer);
          reject(new Error(`no "${text}" on stderr within ${timeoutMs} ms:\n${stderr.slice(-3000)}`));
        }, timeoutMs).unref();
        void exited.then(() => {
          if (!stderr.includes(text)) {
            clearInterval(timer);
            reject(new Error(`tail exited before "${text}":\n${stderr.slice(-3000)}`));
          }
        });
      }),
  };
}

/** Runs a tail that is expected to end on its own; rejects if it does not within `timeoutMs`. */
export async function tailToEnd(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const tail = runTail(args, env);
  const timer = setTimeout(() => tail.child.kill('SIGKILL'), timeoutMs);
  const code = await tail.exited;
  clearTimeout(timer);
  return { code, stdout: tail.stdout(), stderr: tail.stderr() };
}
