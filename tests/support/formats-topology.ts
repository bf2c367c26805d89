import { PROJECT_ROOT } from '../../core/config.ts';
import { loadTopology } from '../../topology/load.ts';
import { subjectFor, type Topology } from '../../topology/model.ts';
import { uniqueName } from './platform.ts';

/**
 * topology/formats.topology.yaml (one route per schema format) with topic names of this run's own,
 * so runs on one broker never meet. `renamed('payments.json')` is this run's name for a topic.
 */
export function formatsTopology(prefix: string): { topology: Topology; renamed(topic: string): string } {
  const suffix = uniqueName(prefix);
  const renamed = (topic: string): string => `${topic}.${suffix}`;
  const loaded = loadTopology(`${PROJECT_ROOT}/topology/formats.topology.yaml`);
  const topology: Topology = {
    ...loaded,
    topics: loaded.topics.map((t) => ({
      ...t,
      name: renamed(t.name),
      ...(t.valueSchema ? { valueSchema: { ...t.valueSchema, subject: subjectFor(renamed(t.name)) } } : {}),
    })),
    routes: loaded.routes.map((r) => ({ ...r, topic: renamed(r.topic) })),
    workers: loaded.workers.map((w) => ({ ...w, input: renamed(w.input), output: renamed(w.output), deadLetter: renamed(w.deadLetter), groupId: uniqueName(w.groupId) })),
  };
  return { topology, renamed };
}
