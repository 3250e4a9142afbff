import { expect } from 'chai';
import { MembershipState } from '../src/types/membership.js';
import { makeEvent, seedRoom } from './conformance/fixtures.js';
import { checkStore } from '../src/io/check.js';
import { sharedEmulator } from './support/drivers-cosmos.js';
import { connOf, openTenant } from './support/cosmos-tenants.js';

/*
 * Cosmos DB's input path: what a writer knows without asking (and what a stale view of a room costs), a new user's
 * NID mapping written in the request of the user's first event, and the rooms-of-a-user mirror.
 */

describe('cosmosdb: what a writer knows without asking', () => {
  it('two writers of one room, each with its own view of the room document: a stale view costs a retry, never a wrong room', async () => {
    const a = await openTenant('twowriters', {}, 'twowriters');
    const b = await openTenant('twowriters', {}, 'twowriters');
    try {
      const room = '!two:example.org';
      const ev = await seedRoom(a, room);
      let prev = ev.bobJoin.eventID;
      // Each writer's next append comes after the other's: every view it keeps is stale by then.
      for (let i = 0; i < 6; i++) {
        const e = makeEvent({ id: `$two-${i}`, room, depth: 7 + i, prev: [prev] });
        const r = await (i % 2 === 0 ? b : a).roomserver.appendEvent(e);
        expect([r.applied, r.duplicate], `event ${i}`).to.deep.equal([true, false]);
        prev = e.eventID;
      }
      const info = (await a.roomserver.roomInfo(room))!;
      for (const s of [a, b]) expect((await s.roomserver.latestEventIDs(info.roomNID)).eventIDs).to.deep.equal([prev]);
      expect((await a.stats.collect()).events).to.equal(12);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a room commit whose answer is lost is still its writer\'s: the event is stored once, at once', async () => {
    const s = await openTenant('lostcommit', { request_timeout_ms: 300, transient_retries: 2 });
    const emulator = await sharedEmulator();
    try {
      const room = '!lost:example.org';
      const ev = await seedRoom(s, room);
      // The next transactional batch of a room (its commit) is applied, but its answer comes after the client gave up:
      // the retry finds the room document changed, reads it back and finds its own token.
      const lost = emulator.inject({
        match: (req) => req.headers['x-ms-cosmos-batch-atomic'] !== undefined && /lostcommit\|room\|/.test(String(req.headers['x-ms-documentdb-partitionkey'] ?? '')),
        times: 1, fault: { kind: 'delayResponse', ms: 450 },
      });
      const message = makeEvent({ id: '$after-lost-commit', room, depth: 7, prev: [ev.bobJoin.eventID] });
      const result = await s.roomserver.appendEvent(message);
      expect(lost.remaining, 'the commit\'s answer was lost').to.equal(0);
      expect([result.applied, result.duplicate]).to.deep.equal([true, false]);
      const info = (await s.roomserver.roomInfo(room))!;
      expect((await s.roomserver.latestEventIDs(info.roomNID)).eventIDs).to.deep.equal([message.eventID]);
      expect((await s.stats.collect()).events).to.equal(Object.keys(ev).length + 1);
    } finally {
      emulator.clearFaults();
      await s.close();
    }
  });

  it('a single-partition query is one request (no query plan from the gateway)', async () => {
    const s = await openTenant('oneplan');
    const emulator = await sharedEmulator();
    try {
      await seedRoom(s, '!plan:example.org');
      const info = (await s.roomserver.roomInfo('!plan:example.org'))!;
      s.requestStats!.reset();
      const before = emulator.requestCount();
      const joined = await s.roomserver.getMembershipEventNIDsForRoom(info.roomNID, true, false);
      const seen = emulator.requestCount() - before;
      expect(joined).to.have.length(2);
      expect(s.requestStats!.snapshot().byOperation).to.have.keys('membership.selectFromRoom');
      expect(seen, 'requests the emulator saw').to.equal(s.requestStats!.snapshot().requests).and.equal(1);
    } finally {
      await s.close();
    }
  });

  it('the state at an event is found through its locator and its room\'s document of it, with no read of its row', async () => {
    const writer = await openTenant('atevent', {}, 'atevent');
    const reader = await openTenant('atevent', {}, 'atevent');
    try {
      const ev = await seedRoom(writer, '!at:example.org');
      reader.requestStats!.reset();
      const state = await reader.roomserver.loadStateAtEvent(ev.bobJoin.eventID);
      expect(state).to.have.length(4);
      const ops = reader.requestStats!.snapshot().byOperation;
      expect(ops['events.readLocator']?.requests, 'the locator').to.equal(1);
      expect(ops['roomEvents.read']?.requests, 'the room\'s document of the event').to.equal(1);
      expect(ops['events.readRow'], 'no row').to.equal(undefined);
      // Asked again, the locator is known (it never changes once its event is stored).
      reader.requestStats!.reset();
      await reader.roomserver.loadStateAtEvent(ev.bobJoin.eventID);
      expect(reader.requestStats!.snapshot().byOperation['events.readLocator'], 'the locator, kept').to.equal(undefined);
    } finally {
      await writer.close();
      await reader.close();
    }
  });
});

describe('cosmosdb: a new user\'s NID, mapped in the request that writes the user\'s first event', () => {
  type Conn = import('../src/storage/cosmosdb/connection.js').CosmosConnection;
  const member = (id: string, room: string, user: string, membership: string, prev: string, sender = user) =>
    makeEvent({ id, room, type: 'm.room.member', stateKey: user, sender, depth: 7, prev: [prev], content: { membership } });
  const mapping = async (conn: Conn, user: string) => {
    const forward = await conn.requests.read<{ nid: number; paired?: boolean }>('t', 'sk', conn.pk('sk', user));
    const reverse = forward && await conn.requests.read<{ s: string }>('t', 'skn', conn.pk('skn', forward.nid));
    return { nid: forward?.nid, paired: forward?.paired, reversed: reverse?.s };
  };

  it('a new user\'s join is three requests (reads, everything before the commit, the commit), and both sides of the mapping are stored', async () => {
    const s = await openTenant('newuser');
    try {
      const room = '!newuser:example.org';
      const ev = await seedRoom(s, room);
      s.requestStats!.reset();
      const join = member('$carol-join', room, '@carol:elsewhere.net', 'join', ev.bobJoin.eventID);
      expect((await s.roomserver.appendEvent(join)).applied).to.equal(true);
      const stats = s.requestStats!.snapshot();
      expect(stats.requests, JSON.stringify(stats.byOperation)).to.equal(3);
      expect(await mapping(connOf(s), '@carol:elsewhere.net')).to.deep.include({ paired: true, reversed: '@carol:elsewhere.net' });
      // The membership knows whose it is (its server is in the room) though the mapping was written beside it.
      const info = (await s.roomserver.roomInfo(room))!;
      expect(await s.tables.membership.selectServerInRoom(s.unitOfWork.autocommit, info.roomNID, 'elsewhere.net')).to.equal(true);
      expect((await checkStore(s)).violations).to.deep.equal([]);
    } finally {
      await s.close();
    }
  });

  it('another process (or this one after a restart) taking such a NID reads its other side in the request that carries its writes, not in one of its own', async () => {
    const a = await openTenant('restarted', {}, 'restarted');
    const b = await openTenant('restarted', {}, 'restarted');
    const room = '!restarted:example.org';
    const user = '@frank:example.org';
    try {
      const ev = await seedRoom(a, room);
      const join = member('$frank-join', room, user, 'join', ev.bobJoin.eventID);
      expect((await a.roomserver.appendEvent(join)).applied).to.equal(true);
      expect(await mapping(connOf(a), user)).to.deep.include({ paired: true, reversed: user });
      // b knows the room, its state and a range of NIDs already (from another member's change), not the user.
      const warm = makeEvent({ id: '$restarted-bob', room, type: 'm.room.member', stateKey: '@bob:remote.net', sender: '@bob:remote.net', depth: 8, prev: [join.eventID], content: { membership: 'join', displayname: 'B' } });
      expect((await b.roomserver.appendEvent(warm)).applied).to.equal(true);
      b.requestStats!.reset();
      const profile = makeEvent({ id: '$frank-name', room, type: 'm.room.member', stateKey: user, sender: user, depth: 9, prev: [warm.eventID], content: { membership: 'join', displayname: 'F' } });
      expect((await b.roomserver.appendEvent(profile)).applied).to.equal(true);
      const stats = b.requestStats!.snapshot();
      // The user's lookup with the reads, then the user's membership (its NID is known only then), the writes, the
      // commit: the read of the mapping's other side costs no request of its own.
      expect(stats.requests, JSON.stringify(stats.byOperation)).to.equal(4);
      expect(stats.byOperation['state key.confirm']?.requests, 'the other side read, riding with the writes').to.equal(0);
      expect(stats.byOperation['state key.confirm']?.requestCharge, 'the other side read').to.be.greaterThan(0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a crash between the two sides of a mapping: the next writer to take the NID stores the missing side first', async () => {
    const a = await openTenant('halfmapped', {}, 'halfmapped');
    const user = '@dave:example.org';
    const room = '!half:example.org';
    let ev: Awaited<ReturnType<typeof seedRoom>>;
    let nid: number;
    try {
      ev = await seedRoom(a, room);
      // What a writer that died in the middle of the request leaves: the string side, written with its pair, alone.
      const conn = connOf(a);
      nid = await conn.sequence('stateKey').nextValue();
      await conn.requests.create('t', { id: 'sk', pk: conn.pk('sk', user), k: 'sk', s: user, nid, paired: true });
      expect(await mapping(conn, user)).to.deep.equal({ nid, paired: true, reversed: undefined });
    } finally {
      await a.close();
    }
    const b = await openTenant('halfmapped', {}, 'halfmapped');
    try {
      expect((await b.roomserver.appendEvent(member('$dave-join', room, user, 'join', ev.bobJoin.eventID))).applied).to.equal(true);
      expect(await mapping(connOf(b), user)).to.deep.equal({ nid, paired: true, reversed: user });
      const tx = b.unitOfWork.autocommit;
      expect((await b.tables.eventStateKeys.bulkSelectEventStateKey(tx, [nid as never])).get(nid as never)).to.equal(user);
      expect((await checkStore(b)).violations).to.deep.equal([]);
    } finally {
      await b.close();
    }
  });

  it('two writers mapping the same new user at once: the later one starts again under the earlier one\'s NID, and takes back the invite it wrote under its own', async () => {
    const a = await openTenant('raced', {}, 'raced');
    const b = await openTenant('raced', {}, 'raced');
    const user = '@erin:example.org';
    try {
      const [one, two] = [await seedRoom(a, '!one:example.org'), await seedRoom(b, '!two:example.org')];
      const inviteTwo = member('$erin-invite-two', '!two:example.org', user, 'invite', two.bobJoin.eventID, '@alice:example.org');
      // Writer b invites the user between a's look (the user is unknown) and a's write of the mapping.
      const requests = connOf(a).requests;
      const create = requests.create.bind(requests);
      let raced = false;
      requests.create = async (operation, doc) => {
        if (!raced && doc.id === 'sk' && (doc as { s?: string }).s === user) {
          raced = true;
          expect((await b.roomserver.appendEvent(inviteTwo)).applied).to.equal(true);
        }
        return create(operation, doc);
      };
      const inviteOne = member('$erin-invite-one', '!one:example.org', user, 'invite', one.bobJoin.eventID, '@alice:example.org');
      expect((await a.roomserver.appendEvent(inviteOne)).applied).to.equal(true);
      expect(raced, 'b mapped the user in the middle of a\'s call').to.equal(true);

      const conn = connOf(a);
      const { nid, reversed } = await mapping(conn, user);
      expect(reversed).to.equal(user);
      const tenant = conn.tenantPrefix;
      const reverses = await conn.requests.crossPartitionQuery<{ nid: number }>('t', tenant,
        "SELECT c.nid FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'skn' AND c.s = @user", [{ name: '@user', value: user }]);
      expect(reverses.map((r) => r.nid), 'no NID side left for the NID a lost').to.deep.equal([nid]);
      const lists = await conn.requests.crossPartitionQuery<{ target: number; invites: { id: string }[] }>('t', tenant,
        "SELECT c.target, c.invites FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'invites'");
      expect(lists.filter((l) => l.invites.length > 0).map((l) => [l.target, l.invites.map((i) => i.id)]).sort())
        .to.deep.equal([[nid, ['$erin-invite-one']], [nid, ['$erin-invite-two']]]);
      const tx = a.unitOfWork.autocommit;
      for (const [room, id] of [['!one:example.org', '$erin-invite-one'], ['!two:example.org', '$erin-invite-two']] as const) {
        const info = (await a.roomserver.roomInfo(room))!;
        expect((await a.tables.invites.selectInviteActiveForUserInRoom(tx, nid as never, info.roomNID)).eventIDs, room).to.deep.equal([id]);
      }
      expect(await a.tables.invites.bulkSelectStoredInviteIDs(tx, ['$erin-invite-one', '$erin-invite-two'])).to.deep.equal(new Set(['$erin-invite-one', '$erin-invite-two']));
      expect((await checkStore(a)).violations).to.deep.equal([]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('cosmosdb: the rooms-of-a-user mirror', () => {
  const profile = (id: string, room: string, user: string, prev: string, name: string) =>
    makeEvent({ id, room, type: 'm.room.member', stateKey: user, sender: user, depth: 8, prev: [prev], content: { membership: 'join', displayname: name } });

  it('a change that leaves it as this process wrote it (a profile change) does not write it again; one after another writer\'s change does, and repairs it', async () => {
    const a = await openTenant('mirror', {}, 'mirror');
    const b = await openTenant('mirror', {}, 'mirror');
    const room = '!mirror:example.org';
    const bob = '@bob:remote.net';
    try {
      const ev = await seedRoom(a, room);
      const info = (await a.roomserver.roomInfo(room))!;
      const tx = a.unitOfWork.autocommit;
      const bobNID = await a.tables.eventStateKeys.selectEventStateKeyNID(tx, bob);
      const conn = connOf(a);
      const mirror = async () => (await conn.requests.read<{ membership: number }>('t', `rm|${info.roomNID}`, conn.pk('user', bobNID)))?.membership;
      const joinedRooms = () => a.tables.membership.selectRoomsWithMembership(tx, bobNID, MembershipState.join);
      expect(await mirror()).to.equal(MembershipState.join);

      a.requestStats!.reset();
      const first = profile('$bob-name-1', room, bob, ev.bobJoin.eventID, 'B1');
      expect((await a.roomserver.appendEvent(first)).applied).to.equal(true);
      expect(a.requestStats!.snapshot().byOperation['membership.mirror'], 'no write of the mirror').to.equal(undefined);
      expect(await joinedRooms()).to.deep.equal([info.roomNID]);

      // Another writer changes the membership (its own event), and its mirror is then lost (as a crash between
      // the two writes of an update outside the input path would lose it).
      const second = profile('$bob-name-2', room, bob, first.eventID, 'B2');
      expect((await b.roomserver.appendEvent(second)).applied).to.equal(true);
      await conn.requests.upsert('t', { id: `rm|${info.roomNID}`, pk: conn.pk('user', bobNID), k: 'user_room', room: info.roomNID, target: bobNID, membership: MembershipState.leaveOrBan, forgotten: false });
      expect(await joinedRooms()).to.deep.equal([]);

      // This process's next change finds the document written by another event than its own: it writes the mirror.
      a.requestStats!.reset();
      expect((await a.roomserver.appendEvent(profile('$bob-name-3', room, bob, second.eventID, 'B3'))).applied).to.equal(true);
      expect(a.requestStats!.snapshot().byOperation['membership.mirror'], 'the mirror written').not.to.equal(undefined);
      expect(await mirror()).to.equal(MembershipState.join);
      expect(await joinedRooms()).to.deep.equal([info.roomNID]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
