/**
 * The operator commands as a user types them, on a SQLite file: `rooms`, `room`, `purge-room` (space given back
 * to the file system), `purge-history`, and the confirmation they ask for.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStorage } from '../src/index.js';
import { SUITE_SETTINGS } from './conformance/harness.js';
import { fillEveryTable, fillGeneratedRoom } from './conformance/fill-store.js';
import { runCliReported } from './support/cli.js';

describe('the rooms, room, purge-room and purge-history commands (SQLite file)', function () {
  this.timeout(60_000);
  let dir: string;
  let config: string;
  let roomID: string;
  let file: string;
  const json = <T>(out: string) => JSON.parse(out) as T;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-rooms-'));
    file = path.join(dir, 'store.db');
    config = path.join(dir, 'config.yaml');
    fs.writeFileSync(config, `backend: sqlite\nserver_name: example.org\nsqlite:\n  path: ${JSON.stringify(file)}\n`);
    const s = await createStorage({ ...SUITE_SETTINGS, backend: 'sqlite', sqlite: { path: file } });
    try {
      await fillEveryTable(s);
      roomID = (await fillGeneratedRoom(s, { members: 200, events: 3000, seed: 9 })).roomID;
    } finally {
      await s.close();
    }
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('rooms lists the largest first and adds up; room shows one with its forward extremities', async () => {
    const listed = await runCliReported(['--config', config, 'rooms', '--json', '--limit', '2']);
    expect(listed.code).to.equal(0);
    const sizes = json<{ rooms: { roomID: string; events: number; bytes: number }[]; totals: { events: number } }>(listed.out);
    expect(sizes.rooms.map((r) => r.roomID)[0]).to.equal(roomID);
    expect(sizes.rooms).to.have.length(2);
    expect(sizes.totals.events).to.be.greaterThan(3000);
    const text = await runCliReported(['--config', config, 'rooms', '--sort', 'members']);
    expect(text.out.split('\n')[1]).to.match(new RegExp(`^${roomID.replace(/[$!.]/g, '\\$&')}\\s+3,000 `));
    expect(text.out).to.match(/^\(all rooms\)/m);
    const one = await runCliReported(['--config', config, 'room', roomID]);
    expect(one.code).to.equal(0);
    expect(one.out).to.match(/version 10; its create event \$\S+ declares 10/).and.match(/forward extremities \(latest events\): \$\S+ \(depth \d+\)/);
    expect((await runCliReported(['--config', config, 'room', '!nowhere:example.org'])).err).to.match(/room: room !nowhere:example.org is not in this store/);
    expect((await runCliReported(['--config', config, 'rooms', '--sort', 'size'])).code).to.equal(2);
  });

  it('purge-room asks first, then deletes the room and gives the space back to the file system', async () => {
    const refused = await runCliReported(['--config', config, 'purge-room', roomID]);
    expect(refused.code).to.equal(2);
    expect(refused.err).to.match(/run it with --yes to confirm/);
    const purged = await runCliReported(['-q', '--config', config, 'purge-room', roomID, '--yes', '--json']);
    expect(purged.code).to.equal(0);
    const report = json<{ rowsDeleted: number; bytesBefore: number; bytesAfter: number; deleted: { events: number } }>(purged.out);
    expect(report.deleted.events).to.equal(3000);
    expect(report.bytesAfter).to.be.lessThan(report.bytesBefore * 0.5);
    expect(fs.statSync(file).size).to.equal(report.bytesAfter);
    expect((await runCliReported(['--config', config, 'check'])).code).to.equal(0);
    expect((await runCliReported(['--config', config, 'purge-room', roomID, '--yes'])).err).to.match(/is not in this store/);
  });

  it('purge-history --before a time keeps a store that check passes and state answers for', async () => {
    const purged = await runCliReported(['-q', '--config', config, 'purge-history', roomID, '--before', '1700000000000000', '--yes']);
    expect(purged.code).to.equal(0);
    expect(purged.out).to.match(/^purged history of .*: [\d,]+ rows deleted/);
    expect((await runCliReported(['--config', config, 'check'])).code).to.equal(0);
    expect((await runCliReported(['--config', config, 'state', roomID])).code).to.equal(0);
    expect((await runCliReported(['--config', config, 'purge-history', roomID, '--before', 'yesterday', '--yes'])).code).to.equal(2);
  });
});
