import { spawn } from 'node:child_process';
import { PROJECT_ROOT } from '../../core/config.ts';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one short `sluice` command to completion, keeping stdout (its output) apart from stderr (logs). */
export function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<CliResult> {
  const child = spawn(process.execPath, ['--disable-warning=TimeoutNegativeWarning', `${PROJECT_ROOT}/bin/sluice.js`, ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, SLUICE_LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
