import { readFileSync } from 'node:fs';
import { PROJECT_ROOT } from '../../core/config.ts';
import { subjectFor, type Topology } from '../../topology/model.ts';

const SCHEMA_FILE = `${PROJECT_ROOT}/schemas/OrderPlaced.avsc`;

/** A topology with one OrderPlaced topic (a uniquely named stand-in for orders.placed) and its POST /v1/orders route. */
export function orderTopology(topic: string, partitions: number): Topology {
  const text = readFileSync(SCHEMA_FILE, 'utf8');
  const schema = JSON.parse(text) as NonNullable<Topology['topics'][number]['valueSchema']>['schema'];
  return {
    file: `${PROJECT_ROOT}/tests/support/order-topology.yaml`,
    topics: [
      {
        name: topic,
        partitions,
        replicationFactor: 1,
        configs: {},
        valueSchema: { file: SCHEMA_FILE, subject: subjectFor(topic), schema, text: JSON.stringify(schema) },
      },
    ],
    routes: [{ method: 'POST', path: '/v1/orders', topic, key: 'orderId' }],
    workers: [],
  };
}

/** What an OrderPlaced event reads back as: the posted fields plus the schema's defaults. */
export const ORDER_DEFAULTS = { channel: 'WEB', couponCode: null, shippingCountry: null, loyaltyPoints: 0 } as const;
