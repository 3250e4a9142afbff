import { expect } from 'chai';
import { metrics, trace } from '@opentelemetry/api';
import { AggregationTemporality, MetricReader, type DataPoint, type Histogram, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Storage } from '../src/index.js';
import type { DriverUnderTest } from './conformance/harness.js';
import { postgres, sqliteFile } from './support/drivers.js';
import { sharedEmulator } from './support/drivers-cosmos.js';
import { emulatorConfig } from './support/cosmos-emulator.js';
import { createStorage } from '../src/index.js';
import { closeAdminPool } from './support/postgres.js';

/** Reads the metrics on demand, as a Prometheus scrape would (cumulative). */
class ReadOnDemand extends MetricReader {
  constructor() { super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE }); }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

interface Point { readonly name: string; readonly attributes: Record<string, unknown>; readonly value: unknown }

const points = (rm: ResourceMetrics): Point[] => rm.scopeMetrics.filter((s) => s.scope.name === 'matrix-storage')
  .flatMap((s) => s.metrics.flatMap((m) => (m.dataPoints as DataPoint<unknown>[]).map((p) => ({ name: m.descriptor.name, attributes: p.attributes, value: p.value }))));

const USER = '@telemetry:example.org';
const ID_LIKE = /[@!$#]|example\.org/;

/**
 * Metrics and traces on every driver, read back through the OpenTelemetry SDK (registered globally, as an
 * application would): one span per Database operation with the driver, the operation, rows, requests and request
 * charge; duration histograms and request counters whose attributes are the fixed set, never an ID; and nothing
 * measured once the SDK is gone.
 */
/** Cosmos DB on the emulator, in containers of its own (other test files share the emulator in one mocha process). */
let cosmosCases = 0;
const cosmos: DriverUnderTest = {
  name: 'cosmosdb (emulator)',
  open: async (settings) => createStorage({ ...settings, ...emulatorConfig(await sharedEmulator(), 'telemetry', `case${++cosmosCases}`, 'tenant') }),
};

for (const driver of [sqliteFile(), postgres, cosmos]) {
  describe(`telemetry (${driver.name})`, function () {
    this.timeout(60_000);
    let reader: ReadOnDemand;
    let spans: InMemorySpanExporter;
    let s: Storage;
    beforeEach(async () => {
      s = await driver.open({ server_name: 'example.org' });
      reader = new ReadOnDemand();
      metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
      spans = new InMemorySpanExporter();
      trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
    });
    afterEach(async () => {
      metrics.disable();
      trace.disable();
      await s.close();
    });

    it('a span per Database operation and metrics with the driver, the operation and the outcome as their only attributes', async () => {
      const devices = [{ userID: USER, deviceID: 'PHONE', keyJSON: '{"device_id":"PHONE"}', streamID: 0 }, { userID: USER, deviceID: 'LAPTOP', keyJSON: '{}', streamID: 0 }];
      await s.keys.storeLocalDeviceKeys(devices);
      const read = await s.keys.deviceKeysForUser(USER, []);
      expect(read).to.have.length(2);
      let failure: unknown;
      try { await s.keyBackup.getKeyBackup(USER, 'not-a-number'); } catch (e) { failure = e; }

      const byName = new Map(spans.getFinishedSpans().map((span) => [span.name, span]));
      const backend = s.config.backend;
      const store = byName.get('keys.storeLocalDeviceKeys');
      expect(store, [...byName.keys()].join(', ')).to.not.equal(undefined);
      expect(store!.attributes).to.include({ 'matrix_storage.driver': backend, 'matrix_storage.operation': 'keys.storeLocalDeviceKeys' });
      expect(store!.attributes['db.system']).to.equal({ sqlite: 'sqlite', postgres: 'postgresql', cosmosdb: 'cosmosdb' }[backend]);
      expect(store!.attributes['matrix_storage.requests']).to.be.a('number').and.above(0);
      expect(store!.attributes['matrix_storage.request_charge']).to.be.a('number');
      if (backend === 'cosmosdb') expect(store!.attributes['matrix_storage.request_charge']).to.be.above(0);
      const readSpan = byName.get('keys.deviceKeysForUser')!;
      expect(readSpan.attributes['matrix_storage.rows']).to.equal(2);
      // Nested Database calls are not spans of their own: every span is an operation a caller asked for.
      expect(spans.getFinishedSpans().map((x) => x.name).filter((n) => !['keys.storeLocalDeviceKeys', 'keys.deviceKeysForUser', 'keyBackup.getKeyBackup'].includes(n))).to.deep.equal([]);
      expect(failure).to.be.instanceOf(Error);
      const failed = byName.get('keyBackup.getKeyBackup')!;
      expect(failed.status.code).to.equal(2);
      expect(failed.attributes['error.type']).to.equal((failure as Error).name);
      for (const span of spans.getFinishedSpans()) for (const v of Object.values(span.attributes)) expect(String(v)).to.not.match(ID_LIKE);

      const { resourceMetrics } = await reader.collect();
      const all = points(resourceMetrics);
      const duration = all.filter((p) => p.name === 'matrix_storage.operation.duration');
      const storeDuration = duration.find((p) => p.attributes['matrix_storage.operation'] === 'keys.storeLocalDeviceKeys');
      expect(storeDuration?.attributes).to.deep.equal({ 'matrix_storage.driver': backend, 'matrix_storage.operation': 'keys.storeLocalDeviceKeys', 'matrix_storage.outcome': 'ok' });
      expect((storeDuration!.value as Histogram).count).to.equal(1);
      expect((storeDuration!.value as Histogram).sum).to.be.above(0);
      const requests = all.find((p) => p.name === 'matrix_storage.operation.requests' && p.attributes['matrix_storage.operation'] === 'keys.storeLocalDeviceKeys');
      expect(requests?.value).to.equal(store!.attributes['matrix_storage.requests']);
      const charge = all.find((p) => p.name === 'matrix_storage.operation.request_charge' && p.attributes['matrix_storage.operation'] === 'keys.storeLocalDeviceKeys');
      if (backend === 'cosmosdb') expect(charge?.value).to.be.closeTo(store!.attributes['matrix_storage.request_charge'] as number, 1e-9);
      else expect(charge).to.equal(undefined);
      for (const p of all) {
        expect(Object.keys(p.attributes).sort()).to.deep.equal(['matrix_storage.driver', 'matrix_storage.operation', 'matrix_storage.outcome']);
        for (const v of Object.values(p.attributes)) expect(String(v)).to.not.match(ID_LIKE);
      }
    });

    it('with no SDK registered nothing is measured (the API is a no-op)', async () => {
      metrics.disable();
      trace.disable();
      await s.keys.storeLocalDeviceKeys([{ userID: USER, deviceID: 'PHONE', keyJSON: '{}', streamID: 0 }]);
      expect(spans.getFinishedSpans()).to.deep.equal([]);
      expect(points((await reader.collect()).resourceMetrics)).to.deep.equal([]);
    });
  });
}

after(closeAdminPool);
