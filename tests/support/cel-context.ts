import { celEnv, plan } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { RE2JS } from 're2js';
import type { Bindings, Expr } from '../../rules/cel-compile.ts';

/** What compileFast and generateFast are given in the rules' own compiler: @bufbuild/cel's program as the fallback, RE2 for `matches`. */
export function celTestContext(): { fallback(node: Expr): (b: Bindings) => unknown; regex(p: string): RE2JS; hasFunction(name: string): boolean } {
  const env = celEnv({ funcs: strings });
  return {
    fallback: (node) => plan(env, node) as (b: Bindings) => unknown,
    regex: (p) => RE2JS.compile(p),
    hasFunction: (name) => env.funcs.find(name) !== undefined,
  };
}
