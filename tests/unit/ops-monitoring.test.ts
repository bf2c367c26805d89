import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Histogram, type Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../core/config.ts';
import { createHttpMetrics } from '../../core/http-metrics.ts';
import { createWorkerMetrics } from '../../consumers/metrics.ts';
import type { BatchingStats } from '../../producers/batching-producer.ts';
import { createMetrics as createIngressMetrics } from '../../producers/ingress-metrics.ts';

/**
 * The alert rules and the dashboard name metrics by string: a renamed metric
 * or label would leave a rule that never fires and a panel that stays empty.
 * This checks every name they use against the registries Sluice creates.
 */

const ALERTS_FILE = `${PROJECT_ROOT}/ops/prometheus/alerts.yml`;
const DASHBOARD_FILE = `${PROJECT_ROOT}/ops/grafana/sluice.json`;

/** Labels Prometheus itself adds: the scrape target's, and a histogram bucket's bound. */
const PROMETHEUS_LABELS = ['job', 'instance', 'le'];
/** Binary operators and modifiers, and aggregations (which may be followed by `by (...)` before their parenthesis). */
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile']);

interface Known {
  labels: Set<string>;
}

/** Series names as Prometheus stores them (histograms expand to _bucket, _sum, _count) with their label names. */
function registeredSeries(): Map<string, Known> {
  const registries: Registry[] = [createIngressMetrics(() => ({ queued: 0 }) as BatchingStats).registry, createWorkerMetrics().registry, createHttpMetrics().registry];
  const series = new Map<string, Known>();
  for (const registry of registries) {
    for (const metric of registry.getMetricsAsArray()) {
      // prom-client keeps the declared label names on the metric object; its typings do not expose them.
      const labelNames = (metric as unknown as { labelNames?: unknown }).labelNames;
      if (!Array.isArray(labelNames)) throw new Error(`prom-client no longer exposes labelNames on ${metric.name}`);
      const labels = new Set([...(labelNames as string[]), ...PROMETHEUS_LABELS]);
      const names = metric instanceof Histogram ? ['_bucket', '_sum', '_count'].map((s) => metric.name + s) : [metric.name];
      for (const name of names) series.set(name, { labels });
    }
  }
  return series;
}

interface Use {
  metric: string;
  labels: string[];
}

/** The metric selectors of a PromQL expression and the label names each matches on, plus the labels it groups by. */
export function promqlUses(expr: string): { selectors: Use[]; grouping: string[] } {
  const selectors: Use[] = [];
  const grouping: string[] = [];
  const token = /"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\{([^}]*)\}|\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)|(\d+(?:\.\d+)?(?:e[+-]?\d+)?)|([a-zA-Z_:][\w:]*)(\s*\()?/gi;
  let last: Use | undefined;
  for (const m of expr.matchAll(token)) {
    const [, matchers, groupBy, number, identifier, call] = m;
    if (matchers !== undefined) {
      const labels = [...matchers.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!);
      if (!last) throw new Error(`label matchers without a metric name in: ${expr}`);
      last.labels.push(...labels);
    } else if (groupBy !== undefined) {
      grouping.push(
        ...groupBy
          .split(',')
          .map((l) => l.trim())
          .filter(Boolean),
      );
    }
    last = undefined;
    if (number !== undefined || identifier === undefined || call !== undefined || KEYWORDS.has(identifier.toLowerCase())) continue;
    last = { metric: identifier, labels: [] };
    selectors.push(last);
  }
  return { selectors, grouping };
}

interface Expression {
  where: string;
  expr: string;
}

function alertExpressions(): Expression[] {
  const doc = parse(readFileSync(ALERTS_FILE, 'utf8')) as { groups: { name: string; rules: { alert: string; expr: string }[] }[] };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })));
}

interface Panel {
  title: string;
  targets?: { expr: string }[];
}

interface Dashboard {
  panels: Panel[];
  templating: { list: { name: string; query?: unknown }[] };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;

function panelExpressions(): Expression[] {
  return dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr })));
}

/** Variables' `label_values(metric, label)` queries. */
function variableQueries(): { where: string; metric: string; label: string }[] {
  return dashboard.templating.list.flatMap((v) => {
    const query = (v.query as { query?: string } | undefined)?.query;
    const m = typeof query === 'string' ? /^label_values\(\s*([\w:]+)\s*,\s*(\w+)\s*\)$/.exec(query) : null;
    return m ? [{ where: `variable ${v.name}`, metric: m[1]!, label: m[2]! }] : [];
  });
}

/** What is wrong with one expression's names; empty when every metric and label exists. */
function problems(series: Map<string, Known>, { where, expr }: Expression): string[] {
  const found: string[] = [];
  const { selectors, grouping } = promqlUses(expr);
  if (selectors.length === 0) found.push(`${where}: no metric in ${expr}`);
  const available = new Set<string>();
  for (const { metric, labels } of selectors) {
    const known = series.get(metric);
    if (!known) {
      found.push(`${where}: ${metric} is not a metric Sluice registers`);
      continue;
    }
    for (const label of known.labels) available.add(label);
    for (const label of labels) if (!known.labels.has(label)) found.push(`${where}: ${metric} has no label ${label}`);
  }
  for (const label of grouping) if (!available.has(label)) found.push(`${where}: groups by ${label}, which none of its metrics has`);
  return found;
}

describe('PromQL name extraction', () => {
  it('finds metric names and their matched labels, and skips functions, keywords, strings, ranges and numbers', () => {
    const uses = promqlUses(
      'histogram_quantile(0.99, sum by (job, le) (rate(a_seconds_bucket{service="x", status!~"5.."}[5m]))) > 0.5 and on (job) b_total or bool c unless sum without (x) (d{route="/a{b}"})',
    );
    expect(uses.selectors).toEqual([
      { metric: 'a_seconds_bucket', labels: ['service', 'status'] },
      { metric: 'b_total', labels: [] },
      { metric: 'c', labels: [] },
      { metric: 'd', labels: ['route'] },
    ]);
    expect(uses.grouping).toEqual(['job', 'le', 'job', 'x']);
  });

  it('reports an unknown metric, an unknown label and a grouping label no metric has', () => {
    const series = new Map([['m_total', { labels: new Set(['worker', 'job']) }]]);
    expect(problems(series, { where: 'x', expr: 'sum by (worker) (rate(m_total{worker="a"}[1m]))' })).toEqual([]);
    expect(problems(series, { where: 'x', expr: 'rate(n_total[1m])' })).toEqual(['x: n_total is not a metric Sluice registers']);
    expect(problems(series, { where: 'x', expr: 'm_total{topic="t"}' })).toEqual(['x: m_total has no label topic']);
    expect(problems(series, { where: 'x', expr: 'sum by (topic) (m_total)' })).toEqual(['x: groups by topic, which none of its metrics has']);
  });
});

describe('alert rules and dashboard use only what Sluice exports', () => {
  const series = registeredSeries();

  it('the registries cover the ingress, HTTP and worker families', () => {
    for (const name of ['sluice_ingress_produce_seconds_bucket', 'sluice_http_requests_total', 'sluice_worker_consumer_lag', 'sluice_worker_transactions_total']) {
      expect(series.has(name), name).toBe(true);
    }
  });

  it('every alert rule names existing metrics and labels', () => {
    const rules = alertExpressions();
    expect(rules.length).toBeGreaterThanOrEqual(8);
    expect(rules.flatMap((r) => problems(series, r))).toEqual([]);
  });

  it('every dashboard panel and variable names existing metrics and labels', () => {
    const targets = panelExpressions();
    expect(targets.length).toBeGreaterThanOrEqual(15);
    expect(targets.flatMap((t) => problems(series, t))).toEqual([]);
    const variables = variableQueries();
    expect(variables.map((v) => v.where)).toEqual(['variable instance', 'variable worker']);
    for (const v of variables) expect(series.get(v.metric)?.labels.has(v.label), `${v.where}: ${v.metric} ${v.label}`).toBe(true);
  });

  it('alerts cover what the issue asks for: ingress 5xx and 503, produce latency, worker lag, dead letters, transaction aborts', () => {
    const all = alertExpressions()
      .map((r) => r.expr)
      .join('\n');
    for (const needle of ['status!="503"', 'status="503"', 'sluice_ingress_produce_seconds_bucket', 'sluice_worker_consumer_lag', 'sluice_worker_dead_letters_total', 'outcome="aborted"']) {
      expect(all).toContain(needle);
    }
  });

  it('dashboard panels do not overlap on the grid', () => {
    const cells = new Set<string>();
    for (const p of dashboard.panels as (Panel & { gridPos: { x: number; y: number; w: number; h: number } })[]) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x += 1) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y += 1) {
          const cell = `${x},${y}`;
          expect(cells.has(cell), `panel "${p.title}" overlaps at ${cell}`).toBe(false);
          cells.add(cell);
        }
      }
    }
  });
});

const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' });
const hasPromtool = !promtool.error && promtool.status === 0;
if (!hasPromtool) process.stderr.write('promtool not installed (apt-get install prometheus): skipping `promtool check rules`\n');

describe.skipIf(!hasPromtool)('promtool', () => {
  it('accepts the alert rules', () => {
    const result = spawnSync('promtool', ['check', 'rules', ALERTS_FILE], { encoding: 'utf8' });
    expect(result.stderr + result.stdout).toMatch(/SUCCESS: \d+ rules found/);
    expect(result.status).toBe(0);
  });

  it('fires the alerts on series as Sluice exports them, and not on healthy ones (ops/prometheus/alerts.test.yml)', () => {
    const result = spawnSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: `${PROJECT_ROOT}/ops/prometheus`, encoding: 'utf8' });
    expect(result.stdout + result.stderr).toContain('SUCCESS');
    expect(result.status, result.stdout + result.stderr).toBe(0);
  });
});
