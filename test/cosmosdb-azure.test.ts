/**
 * Cases only a real Azure Cosmos DB account can show, and the whole conformance suite against that account. They
 * run when COSMOS_ENDPOINT and COSMOS_KEY are set (e.g. `COSMOS_ENDPOINT=https://acct.documents.azure.com:443/
 * COSMOS_KEY=... npm test`); otherwise each is skipped with its reason printed. Each run uses its own container
 * (deleted at the end) and each case its own tenant.
 */
import { expect } from 'chai';
import { CosmosClient } from '@azure/cosmos';
import { createStorage, type Storage } from '../src/index.js';
import { conformanceSuite } from './conformance/index.js';
import { SUITE_SETTINGS, type DriverUnderTest } from './conformance/harness.js';
import { seedRoom } from './conformance/fixtures.js';

const endpoint = process.env.COSMOS_ENDPOINT;
const key = process.env.COSMOS_KEY;
const configured = Boolean(endpoint && key);
const database = process.env.COSMOS_DATABASE ?? 'matrix-storage-test';
const container = `run-${process.pid}-${Date.now().toString(36)}`;
let tenants = 0;

function open(settings: object, extra: Record<string, unknown> = {}): Promise<Storage> {
  return createStorage({
    ...settings, backend: 'cosmosdb',
    cosmosdb: { endpoint, key, database, container, tenant: `t${++tenants}`, create_if_missing: true, ...extra },
  });
}

/** Registers a case that needs a real account, or a skipped one that says why. */
function azureOnly(title: string, whyNotOnEmulator: string, fn: () => Promise<void>): void {
  it(`${title} [Azure-only: ${whyNotOnEmulator}]`, async function () {
    if (!configured) {
      console.log(`    Azure-only, skipped: ${title}: ${whyNotOnEmulator}; set COSMOS_ENDPOINT and COSMOS_KEY to run it`);
      this.skip();
    }
    this.timeout(120_000);
    await fn();
  });
}

describe('cosmosdb on a real Azure account', () => {
  after(async () => {
    if (!configured) return;
    const client = new CosmosClient({ endpoint: endpoint!, key: key! });
    await client.database(database).container(container).delete().catch(() => undefined);
    client.dispose();
  });

  azureOnly('request charges are real: a point read of a small document costs about 1 RU, a write more', 'the emulator charges 1 for everything', async () => {
    const s = await open(SUITE_SETTINGS);
    try {
      await seedRoom(s);
      s.requestStats!.reset();
      await s.tables.rooms.selectRoomNID(s.unitOfWork.autocommit, '!room:example.org');
      const read = s.requestStats!.snapshot();
      expect(read.requests).to.equal(1);
      expect(read.requestCharge).to.be.within(0.9, 2);
      s.requestStats!.reset();
      await s.roomserver.publishRoom('!room:example.org', true);
      expect(s.requestStats!.snapshot().requestCharge).to.be.greaterThan(2);
    } finally {
      await s.close();
    }
  });

  azureOnly('the partitionKey request option alone scopes a query to one partition', 'the emulator ignores the option (the driver also filters on c.pk, so it is correct either way)', async () => {
    const client = new CosmosClient({ endpoint: endpoint!, key: key! });
    try {
      const c = client.database(database).container(container);
      await c.items.upsert({ id: 'a', pk: 'scope-test|1', k: 'probe' });
      await c.items.upsert({ id: 'a', pk: 'scope-test|2', k: 'probe' });
      const { resources } = await c.items.query("SELECT c.pk FROM c WHERE c.k = 'probe'", { partitionKey: 'scope-test|1' }).fetchAll();
      expect(resources.map((r: { pk: string }) => r.pk)).to.deep.equal(['scope-test|1']);
    } finally {
      client.dispose();
    }
  });

  azureOnly('a 5,000-character state key is stored and found (ids and partition keys stay within Azure\'s limits)', 'the emulator accepts any id or partition key length', async () => {
    const s = await open(SUITE_SETTINGS);
    try {
      const long = `@${'a/b?c#d\\'.repeat(625)}:example.org`;
      const t = s.tables.eventStateKeys;
      const nid = await t.insertEventStateKeyNID(s.unitOfWork.autocommit, long);
      expect(await t.selectEventStateKeyNID(s.unitOfWork.autocommit, long)).to.equal(nid);
      expect((await t.bulkSelectEventStateKey(s.unitOfWork.autocommit, [nid])).get(nid)).to.equal(long);
    } finally {
      await s.close();
    }
  });

  if (configured) {
    const driver: DriverUnderTest = { name: 'cosmosdb (Azure)', open: (settings) => open(settings) };
    conformanceSuite({ describe, it, beforeEach, afterEach }, driver);
  } else {
    azureOnly('the whole conformance suite against the account', 'needs a real account', async () => {});
  }
});
