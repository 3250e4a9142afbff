import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createStorage, type Storage } from '../src/index.js';
import { StoreUnavailableError } from '../src/types/errors.js';
import { generateRoom } from '../src/io/generate-room.js';
import { validateGenerateOptions } from '../src/io/generate-options.js';
import { parsePDU } from '../src/types/event.js';
import { startCluster, type Cluster } from './support/pg-cluster.js';
import { runCliReported } from './support/cli.js';

/**
 * A lost PostgreSQL connection, as an unlucky operator meets it: the server crashes or restarts in the middle of
 * an import. The process must survive (pg emits 'error' on the checked-out client: unheard, it kills the
 * process), the import must stop with one clean line, the store must hold exactly a prefix of the file with
 * consistent state, the same pool must recover once the server is back, and the same import must then finish.
 */

type Line = { event_id: string; room_id: string; type: string; state_key?: string };

/** The generated file's PDUs, each with the ID import computes for it. */
const withIDs = (text: string[]) => text.map((t) => ({ ...JSON.parse(t), event_id: parsePDU(t, '10').event.eventID }) as Line);

/** The current state a prefix of the file implies: the last event per (type, state key). */
function replay(lines: readonly Line[]): string[] {
  const state = new Map<string, string>();
  for (const e of lines) if (e.state_key !== undefined) state.set(`${e.type}\u0000${e.state_key}`, e.event_id);
  return [...state.values()].sort();
}

async function currentStateIDs(storage: Storage, roomID: string): Promise<string[]> {
  const entries = await storage.roomserver.currentState(roomID);
  return (await storage.roomserver.events(entries.map((e) => e.eventNID))).map((s) => s.event.eventID).sort();
}

/** How many of the file's events are stored; they must be its first ones, with nothing after a gap. */
async function storedPrefix(storage: Storage, lines: readonly Line[]): Promise<number> {
  const stored = await storage.roomserver.eventNIDs(lines.map((l) => l.event_id));
  const n = lines.findIndex((l) => !stored.has(l.event_id));
  const prefix = n < 0 ? lines.length : n;
  expect(stored.size, 'the stored events are a prefix of the file').to.equal(prefix);
  return prefix;
}

describe('postgres: the server goes away mid-import', function () {
  this.timeout(120_000);
  let cluster: Cluster;
  let dir: string;
  let file: string;
  let lines: Line[];
  let schemas = 0;

  before(async () => {
    // Durable (fsync and synchronous_commit on): a crash must not lose a commit the client was told of.
    cluster = await startCluster({ durable: true, prefix: 'pgresilience' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-resilience-'));
    file = path.join(dir, 'room.jsonl');
    const text = [...generateRoom(validateGenerateOptions({ members: 60, events: 1200, seed: 5 }))];
    fs.writeFileSync(file, `${text.join('\n')}\n`);
    lines = withIDs(text);
  });
  after(async () => {
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Resolves once the schema's events table holds at least `n` rows (polled over a connection of its own). */
  async function waitForEvents(schema: string, n: number): Promise<void> {
    const client = new pg.Client({ connectionString: cluster.url });
    client.on('error', () => {});
    await client.connect();
    try {
      for (;;) {
        const r = await client.query(`SELECT count(*)::int AS n FROM ${schema}.roomserver_events`).catch(() => ({ rows: [{ n: 0 }] }));
        if ((r.rows[0] as { n: number }).n >= n) return;
        await new Promise((res) => setTimeout(res, 10));
      }
    } finally {
      await client.end().catch(() => {});
    }
  }

  for (const mode of ['immediate', 'fast'] as const) {
    it(`${mode === 'immediate' ? 'a crash' : 'a fast restart'}: one clean line, a consistent prefix, and the same import finishes it`, async () => {
      const schema = `resilience_${++schemas}`;
      const config = path.join(dir, `${schema}.yaml`);
      fs.writeFileSync(config, `backend: postgres\nserver_name: example.org\npostgres:\n  url: ${cluster.url}\n  schema: ${schema}\n`);
      const importing = runCliReported(['--config', config, 'import', file]);
      await waitForEvents(schema, 150);
      await cluster.down(mode);
      const failed = await importing;
      await cluster.start();
      expect(failed.code, failed.err).to.equal(3);
      const reported = failed.err.split('\n').filter((l) => l.startsWith('matrix-storage:'));
      expect(reported, failed.err).to.have.length(1);
      expect(reported[0]).to.match(/^matrix-storage: import stopped at line \d+ of .*: (cannot reach )?PostgreSQL at 127\.0\.0\.1:\d+\/postgres \(schema resilience_\d+\): /)
        .and.match(/run the same import again/);
      expect(failed.err).to.not.match(/\n\s+at /);

      const storage = await createStorage({ backend: 'postgres', server_name: 'example.org', postgres: { url: cluster.url, schema } });
      try {
        const n = await storedPrefix(storage, lines);
        expect(n).to.be.within(150, lines.length - 1);
        const roomID = lines[0]!.room_id;
        // Intact: the room's current state is exactly what its stored prefix implies, and its latest event is the last stored.
        expect(await currentStateIDs(storage, roomID)).to.deep.equal(replay(lines.slice(0, n)));
        const info = (await storage.roomserver.roomInfo(roomID))!;
        expect((await storage.roomserver.latestEventIDs(info.roomNID)).eventIDs).to.deep.equal([lines[n - 1]!.event_id]);
      } finally {
        await storage.close();
      }

      const resumed = await runCliReported(['--config', config, 'import', file]);
      expect(resumed.code, resumed.err).to.equal(0);
      const again = await createStorage({ backend: 'postgres', server_name: 'example.org', postgres: { url: cluster.url, schema } });
      try {
        expect(await storedPrefix(again, lines)).to.equal(lines.length);
        expect(await currentStateIDs(again, lines[0]!.room_id)).to.deep.equal(replay(lines));
      } finally {
        await again.close();
      }
    });
  }

  it('an open store survives the server going away: calls fail with a retryable StoreUnavailableError, then the pool recovers', async () => {
    const storage = await createStorage({ backend: 'postgres', server_name: 'example.org', postgres: { url: cluster.url, schema: 'resilience_pool' } });
    try {
      const [create, join] = lines;
      await storage.roomserver.appendEvent(parseLine(create!));
      await cluster.down('immediate');
      for (const call of [
        () => storage.roomserver.appendEvent(parseLine(join!)),
        () => storage.roomserver.currentState(create!.room_id),
        () => storage.keys.storeKeyChange('@alice:example.org'),
      ]) {
        let error: unknown;
        try { await call(); } catch (e) { error = e; }
        expect(error).to.be.instanceOf(StoreUnavailableError);
        expect((error as StoreUnavailableError).retryable).to.equal(true);
        expect((error as Error).message).to.match(/PostgreSQL at 127\.0\.0\.1:\d+\/postgres \(schema resilience_pool\)/);
      }
      await cluster.start();
      await storage.roomserver.appendEvent(parseLine(join!));
      expect(await currentStateIDs(storage, create!.room_id)).to.deep.equal(replay([create!, join!]));
    } finally {
      await storage.close();
    }
  });
});

const parseLine = (line: Line) => { const { event_id: _, ...pdu } = line; return parsePDU(pdu, '10').event; };
