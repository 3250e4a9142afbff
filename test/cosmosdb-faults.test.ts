import { expect } from 'chai';
import type { Storage } from '../src/index.js';
import { generateRoom } from '../src/io/generate-room.js';
import { validateGenerateOptions } from '../src/io/generate-options.js';
import { parsePDU } from '../src/types/event.js';
import { StoreUnavailableError } from '../src/types/errors.js';
import { faultMix, inContainer, isBulkRequest, isDocumentWrite } from './support/cosmos-emulator.js';
import { importPDUFile } from '../src/io/import.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sharedEmulator } from './support/drivers-cosmos.js';
import { connOf, openTenant } from './support/cosmos-tenants.js';

/*
 * Cosmos DB under faults the emulator injects: one-time-key claims (what a claim costs and leaves behind, then
 * claims whose answers or writes are lost), and imports through outages and mixes of every fault kind.
 */

/** A generated line (a room version 10 PDU) as the event it is. */
const parseEvent = (line: string) => parsePDU(line, '10').event;

describe('cosmosdb: one-time-key claims', () => {
  it('a claim is a query and one request, which deletes the device\'s documents claimed before, on their claimed ETags', async () => {
    const s = await openTenant('otkcost', {}, 'otkcost');
    const emulator = await sharedEmulator();
    const conn = connOf(s);
    const claimedDocuments = async (device: string) => (await conn.requests.query<number>('t', conn.pk('otk', '@dana:example.org', device),
      'SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk AND IS_DEFINED(c.claim)'))[0];
    const claim = async (device: string) => {
      const [got] = await s.keys.claimKeys(new Map([['@dana:example.org', new Map([[device, 'signed_curve25519']])]]));
      return [...got!.keyJSON.keys()][0]!;
    };
    try {
      for (const device of ['A', 'B']) {
        await s.keys.storeOneTimeKeys({ userID: '@dana:example.org', deviceID: device, keyJSON: new Map(Array.from({ length: 10 }, (_, i) => [`signed_curve25519:K${i}`, `{"key":${i}}`])) });
      }
      // The SDK reads the container's partition key ranges once, before its first bulk request.
      await claim('B');
      s.requestStats!.reset();
      const before = emulator.requestCount();
      let lastOfA = '';
      for (let i = 0; i < 6; i++) {
        const key = await claim(i % 2 === 0 ? 'A' : 'B');
        if (i % 2 === 0) lastOfA = key;
      }
      expect(emulator.requestCount() - before, 'requests the emulator saw').to.equal(12);
      expect(s.requestStats!.snapshot().requests, 'requests the driver counted').to.equal(12);
      // Each claim deleted its device's document claimed before: only the last one of each device waits.
      expect(await claimedDocuments('A')).to.equal(1);
      expect(await claimedDocuments('B')).to.equal(1);
      // The key last claimed on A, uploaded again while its delete waits: the delete (on the claimed ETag) keeps it.
      await s.keys.storeOneTimeKeys({ userID: '@dana:example.org', deviceID: 'A', keyJSON: new Map([[lastOfA, '{"again":true}']]) });
      expect((await s.keys.oneTimeKeysCount('@dana:example.org', 'A')).keyCount.get('signed_curve25519')).to.equal(8);
      await claim('A');
      expect((await s.keys.oneTimeKeysCount('@dana:example.org', 'A')).keyCount.get('signed_curve25519')).to.equal(7);
      expect(await claimedDocuments('A')).to.equal(1);
    } finally {
      await s.close();
    }
  });
});

/** Everything a reader can see of an imported room, as plain data to compare between two stores. */
async function observe(storage: Storage, lines: string[]) {
  const db = storage.roomserver;
  const events = lines.map((l) => parseEvent(l));
  const roomID = events[0]!.roomID;
  const ids = async (nids: number[]) => [...(await db.eventIDs(nids as never)).values()].sort();
  const statesBefore: string[][] = [];
  for (const e of events) statesBefore.push(await ids((await db.loadStateAtEvent(e.eventID)).map((s) => s.eventNID)));
  const info = (await db.roomInfo(roomID))!;
  const stored = await db.eventsFromIDs(events.map((e) => e.eventID));
  return {
    current: await ids((await db.currentState(roomID)).map((s) => s.eventNID)),
    statesBefore,
    latest: (await db.latestEventIDs(info.roomNID)).eventIDs,
    joined: await ids(await db.getMembershipEventNIDsForRoom(info.roomNID, true, false)),
    all: await ids(await db.getMembershipEventNIDsForRoom(info.roomNID, false, false)),
    json: stored.map((s) => s.event.json).sort(),
    count: (await storage.stats.collect()).events,
  };
}

/**
 * Four claimers at once claim the device DEV's signed_curve25519 keys until a claim finds none (or hands a claimer
 * the key `stopAt`): the keys handed out, and how many claims failed (each must be a StoreUnavailableError; the
 * claimer then tries again).
 */
async function claimUntilNoneLeft(storage: Storage, user: string, stopAt?: string): Promise<{ handedOut: string[]; failedClaims: number }> {
  const handedOut: string[] = [];
  let failedClaims = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (let tries = 0; tries < 200; tries++) {
      let got;
      try {
        got = await storage.keys.claimKeys(new Map([[user, new Map([['DEV', 'signed_curve25519']])]]));
      } catch (e) {
        expect(e, String(e)).to.be.instanceOf(StoreUnavailableError);
        failedClaims++;
        continue;
      }
      const key = got[0]?.keyJSON;
      if (!key || key.size === 0) return;
      handedOut.push(...key.keys());
      if (stopAt !== undefined && key.has(stopAt)) return;
    }
  }));
  return { handedOut, failedClaims };
}

describe('cosmosdb: faults', function () {
  this.timeout(180_000);

  it('one-time-key claims whose answers are lost hand every key out exactly once, and lose none', async () => {
    const claimer = await openTenant('otkfaults', { request_timeout_ms: 300, transient_retries: 8 }, 'otkfaults');
    const emulator = await sharedEmulator();
    const user = '@alice:example.org';
    const keys = 40;
    try {
      await claimer.keys.storeOneTimeKeys({ userID: user, deviceID: 'DEV', keyJSON: new Map(Array.from({ length: keys }, (_, i) => [`signed_curve25519:K${i}`, `{"key":${i}}`])) });
      // Half of the container's writes (the bulk requests of claims and the deletes they carry) are applied, but
      // their answers come only after the client gave up: every such write is retried blind.
      let n = 0;
      const lost = emulator.inject({
        match: (req) => isDocumentWrite(req) && inContainer('otkfaults')(req) && ++n % 2 === 0,
        times: 1_000_000, fault: { kind: 'delayResponse', ms: 450 },
      });
      const { handedOut: claimed, failedClaims } = await claimUntilNoneLeft(claimer, user);
      emulator.clearFaults();
      expect(failedClaims, 'claims that failed').to.equal(0);
      expect(1_000_000 - lost.remaining, 'responses lost').to.be.greaterThan(keys / 2);
      expect(claimed.length, 'keys handed out').to.equal(keys);
      expect(new Set(claimed).size, 'each key once').to.equal(keys);
      expect((await claimer.keys.oneTimeKeysCount(user, 'DEV')).keyCount.size).to.equal(0);
      console.log(`      ${keys} keys claimed by 4 claimers with ${1_000_000 - lost.remaining} write answers lost: each handed out once, none lost`);
    } finally {
      emulator.clearFaults();
      await claimer.close();
    }
  });

  it('one-time-key claims whose writes go unanswered hand each key out once or leave it claimable: none lost', async () => {
    // One retry and a timeout shorter than the answers' delay: a claim's writes (the claim's replace and the cleanup
    // deletes it carries, in one bulk request) are applied but no try of theirs hears back, so the driver gives up
    // on them with StoreUnavailableErrors.
    const claimer = await openTenant('otklost', { request_timeout_ms: 300, transient_retries: 1 }, 'otklost');
    const emulator = await sharedEmulator();
    const user = '@bob:example.org';
    const stored = 40;
    try {
      await claimer.keys.storeOneTimeKeys({ userID: user, deviceID: 'DEV', keyJSON: new Map(Array.from({ length: stored }, (_, i) => [`signed_curve25519:K${i}`, `{"key":${i}}`])) });
      // Two writes in three go unanswered: applied with the answer lost, or lost on the way (never applied).
      let n = 0;
      const lost = emulator.inject({
        match: (req) => isDocumentWrite(req) && inContainer('otklost')(req),
        times: 1_000_000, fault: () => [undefined, { kind: 'delayResponse', ms: 450 } as const, { kind: 'delayRequest', ms: 450 } as const][++n % 3],
      });
      const { handedOut, failedClaims } = await claimUntilNoneLeft(claimer, user);
      emulator.clearFaults();
      await new Promise((r) => setTimeout(r, 600));
      const left = (await claimer.keys.oneTimeKeysCount(user, 'DEV')).keyCount.get('signed_curve25519') ?? 0;
      const once = new Set(handedOut).size;
      const lostKeys = stored - once - left;
      // Claimed documents whose cleanup delete failed are deleted by the claims that come after, a few each: none
      // stays once the store answers again.
      const conn = connOf(claimer);
      const claimedDocuments = async () => (await conn.requests.query<number>('t', conn.pk('otk', user, 'DEV'),
        'SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk AND IS_DEFINED(c.claim)'))[0];
      const leftBehind = await claimedDocuments();
      for (let i = 0; i < 10; i++) await claimer.keys.claimKeys(new Map([[user, new Map([['DEV', 'signed_curve25519']])]]));
      expect(await claimedDocuments(), 'claimed documents after ten more claims').to.equal(0);
      console.log(`      ${stored} keys stored, ${handedOut.length} handed out (${once} distinct), ${left} left, ${lostKeys} lost; ` +
        `${lost.injected.delayResponse} write answers and ${lost.injected.delayRequest} writes lost, ${failedClaims} claims failed (StoreUnavailableError), ` +
        `${leftBehind} claimed documents left when the claims ended`);
      // A claim's writes are one bulk request, which carries the other claimers' writes of that moment too: fewer
      // requests (and lost answers) than claims, each lost answer lost to every claim it carried.
      expect(lost.injected.delayResponse, 'answers lost').to.be.greaterThan(stored / 4);
      expect(failedClaims, 'claims that failed').to.be.greaterThan(0);
      expect(handedOut.length, 'each key handed out once').to.equal(once);
      expect(lostKeys, 'keys lost').to.equal(0);
    } finally {
      emulator.clearFaults();
      await claimer.close();
    }
  });

  it('fallback-key claims whose writes go unanswered: one-time keys once each, none lost, the fallback key handed out only once marked used', async () => {
    const claimer = await openTenant('fbklost', { request_timeout_ms: 300, transient_retries: 1 }, 'fbklost');
    const emulator = await sharedEmulator();
    const user = '@carol:example.org';
    const stored = 20;
    const fallback = 'signed_curve25519:FALLBACK';
    try {
      await claimer.keys.storeOneTimeKeys({ userID: user, deviceID: 'DEV', keyJSON: new Map(Array.from({ length: stored }, (_, i) => [`signed_curve25519:K${i}`, `{"key":${i}}`])) });
      await claimer.keys.storeFallbackKeys({ userID: user, deviceID: 'DEV', keyJSON: new Map([[fallback, '{"fallback":true}']]) });
      // Two writes in three go unanswered (the claims' bulk requests, the fallback key's used mark):
      // applied with the answer lost, or lost on the way.
      let n = 0;
      const lost = emulator.inject({
        match: (req) => isDocumentWrite(req) && inContainer('fbklost')(req), times: 1_000_000,
        fault: () => [undefined, { kind: 'delayResponse', ms: 450 } as const, { kind: 'delayRequest', ms: 450 } as const][++n % 3],
      });
      // Each claimer claims until it is handed the fallback key.
      const { handedOut, failedClaims } = await claimUntilNoneLeft(claimer, user, fallback);
      const fallbacks = handedOut.filter((k) => k === fallback).length;
      // A new fallback key, uploaded under the same faults, is unused until a claim takes it.
      let uploads = 1;
      for (; ; uploads++) {
        try {
          await claimer.keys.storeFallbackKeys({ userID: user, deviceID: 'DEV', keyJSON: new Map([['signed_curve25519:NEXT', '{"fallback":true,"n":2}']]) });
          break;
        } catch (e) {
          expect(e, String(e)).to.be.instanceOf(StoreUnavailableError);
        }
      }
      expect(await claimer.keys.unusedFallbackKeyAlgorithms(user, 'DEV')).to.deep.equal(['signed_curve25519']);
      const next = await claimUntilNoneLeft(claimer, user, 'signed_curve25519:NEXT');
      emulator.clearFaults();
      await new Promise((r) => setTimeout(r, 600));
      const oneTime = handedOut.filter((k) => k !== fallback);
      const left = (await claimer.keys.oneTimeKeysCount(user, 'DEV')).keyCount.get('signed_curve25519') ?? 0;
      const lostKeys = stored - new Set(oneTime).size - left;
      console.log(`      ${stored} one-time keys stored, ${oneTime.length} handed out (${new Set(oneTime).size} distinct), ${left} left, ${lostKeys} lost; ` +
        `fallback key handed out ${fallbacks} times, the next one after ${uploads} upload tries; ` +
        `${lost.injected.delayResponse} write answers and ${lost.injected.delayRequest} writes lost, ${failedClaims + next.failedClaims} claims failed`);
      // A claim's writes are one bulk request, which carries the other claimers' writes of that moment too: fewer
      // requests (and lost answers) than claims, each lost answer lost to every claim it carried.
      expect(lost.injected.delayResponse, 'answers lost').to.be.greaterThan(stored / 4);
      expect(oneTime.length, 'each one-time key handed out once').to.equal(new Set(oneTime).size);
      expect(lostKeys, 'one-time keys lost').to.equal(0);
      expect(fallbacks, 'every claimer ended on the fallback key').to.equal(4);
      expect(next.handedOut.filter((k) => k === 'signed_curve25519:NEXT')).to.have.length(4);
      // Handed out means marked used, whatever answers were lost.
      expect(await claimer.keys.unusedFallbackKeyAlgorithms(user, 'DEV')).to.deep.equal([]);
    } finally {
      emulator.clearFaults();
      await claimer.close();
    }
  });

  it('an outage longer than the retries: retryable StoreUnavailableErrors, then the same calls finish the import exactly', async () => {
    const lines = [...generateRoom(validateGenerateOptions({ members: 10, events: 80, seed: 11 }))];
    const clean = await openTenant('clean-outage');
    const cut = await openTenant('outage', { request_timeout_ms: 400, transient_retries: 2 }, 'outage');
    const emulator = await sharedEmulator();
    try {
      for (const l of lines) await clean.roomserver.appendEvent(parseEvent(l));
      for (const l of lines.slice(0, 40)) await cut.roomserver.appendEvent(parseEvent(l));
      // Every write of this tenant's (bulk requests too) has its connection cut, for longer than the driver retries
      // them. (Reads are retried by the SDK itself, ten times a second apart: an outage of reads surfaces the same
      // way, ten seconds on.)
      const outage = emulator.inject({ match: (req) => isDocumentWrite(req) && inContainer('outage')(req), times: 1_000_000, fault: { kind: 'reset' } });
      // The same event twice, as a homeserver retrying would (the next event names it, so it needs it stored first).
      for (const event of [lines[40]!, lines[40]!]) {
        let error: unknown;
        try { await cut.roomserver.appendEvent(parseEvent(event)); } catch (e) { error = e; }
        expect(error, String(error)).to.be.instanceOf(StoreUnavailableError);
        expect((error as StoreUnavailableError).retryable).to.equal(true);
        expect((error as Error).message).to.match(/^Cosmos DB at https:\/\/127\.0\.0\.1:\d+\/: .* still failed after retries/);
      }
      expect(outage.remaining).to.be.lessThan(1_000_000);
      emulator.clearFaults();
      // The connection is back: the same calls, from the event that failed, finish the job.
      for (const l of lines.slice(40)) await cut.roomserver.appendEvent(parseEvent(l));
      expect(await observe(cut, lines)).to.deep.equal(await observe(clean, lines));
    } finally {
      emulator.clearFaults();
      await clean.close();
      await cut.close();
    }
  });

  // The single-event path makes about fifteen requests an event, the batch path about one: rooms of a size each
  // meets some hundred faults in.
  for (const [route, batchSize, events] of [['single-event', 1, 50], ['batch', 100, 500]] as const) {
    it(`matrix-storage import on the ${route} path under a 20% mix of every fault kind, bulk requests included, ends equal to a clean import`, async () => {
      const lines = [...generateRoom(validateGenerateOptions({ members: 12, events, seed: 5 }))];
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cosmos-faults-'));
      const file = path.join(dir, 'room.jsonl');
      fs.writeFileSync(file, `${lines.join('\n')}\n`);
      const container = `mix-${route}`;
      const clean = await openTenant('clean-mix');
      // A client timeout shorter than the injected delays: delayed requests are given up on, delayed answers cut.
      const faulty = await openTenant('mix', { request_timeout_ms: 300, transient_retries: 8 }, container);
      const emulator = await sharedEmulator();
      try {
        await importPDUFile(clean, file, { batchSize });
        // One request in five of the faulty container's, whatever it is (point read, query, write, bulk request),
        // gets a fault, the five kinds in turn.
        const mix = faultMix(5, [
          { kind: '429', retryAfterMs: 5 }, { kind: '503' }, { kind: 'delayRequest', ms: 450 }, { kind: 'delayResponse', ms: 450 }, { kind: 'reset' },
        ]);
        let bulkFaults = 0;
        const rule = emulator.inject({
          match: inContainer(container), times: 1_000_000,
          fault: (req) => {
            const f = mix(req);
            if (f && isBulkRequest(req)) bulkFaults++;
            return f;
          },
        });
        // What an operator does when the import exits 3 (the store could not be used, retryable): run it again.
        let runs = 0;
        for (;;) {
          runs++;
          try {
            await importPDUFile(faulty, file, { batchSize });
            break;
          } catch (e) {
            expect(e, String(e)).to.be.instanceOf(StoreUnavailableError);
            expect((e as StoreUnavailableError).retryable, String(e)).to.equal(true);
            if (runs >= 5) throw e;
          }
        }
        emulator.clearFaults();
        const kinds = Object.entries(rule.injected);
        expect(kinds.every(([, n]) => n > 0), `every kind of fault was injected: ${JSON.stringify(rule.injected)}`).to.equal(true);
        expect(bulkFaults, 'faults on bulk requests').to.be.greaterThan(0);
        // Writes whose answers were delayed past the timeout land before the stores are compared.
        await new Promise((r) => setTimeout(r, 600));
        const [a, b] = [await observe(clean, lines), await observe(faulty, lines)];
        expect(b).to.deep.equal(a);
        expect(b.count).to.equal(lines.length);
        console.log(`      ${route} path: ${kinds.map(([k, n]) => `${n} ${k}`).join(', ')} (${bulkFaults} on bulk requests); import runs: ${runs}`);
      } finally {
        emulator.clearFaults();
        fs.rmSync(dir, { recursive: true, force: true });
        await clean.close();
        await faulty.close();
      }
    });
  }

  it('an import under 429s, 503s, timeouts before and after writes, and resets stores exactly what a clean import stores', async () => {
    const lines = [...generateRoom(validateGenerateOptions({ members: 12, events: 120, seed: 7 }))];
    const clean = await openTenant('clean');
    const faulty = await openTenant('faulty', { request_timeout_ms: 400, transient_retries: 8 }, 'faulty');
    const emulator = await sharedEmulator();
    try {
      for (const l of lines) await clean.roomserver.appendEvent(parseEvent(l));
      // A fault every few requests, of each kind, for the whole faulty import.
      let n = 0;
      const every = (k: number, writesOnly: boolean) => (req: import('node:http').IncomingMessage) =>
        (!writesOnly || isDocumentWrite(req)) && inContainer('faulty')(req) && ++n % k === 0;
      const rules = [
        emulator.inject({ match: every(7, false), times: 60, fault: { kind: '429', retryAfterMs: 5 } }),
        emulator.inject({ match: every(11, true), times: 30, fault: { kind: '503' } }),
        emulator.inject({ match: every(13, true), times: 12, fault: { kind: 'delayResponse', ms: 700 } }),
        emulator.inject({ match: every(17, true), times: 12, fault: { kind: 'delayRequest', ms: 700 } }),
        emulator.inject({ match: every(19, false), times: 12, fault: { kind: 'reset' } }),
      ];
      let callerRetries = 0;
      for (const l of lines) {
        // What a homeserver does when a call still fails after the driver's retries: call again.
        for (let attempt = 1; ; attempt++) {
          try {
            await faulty.roomserver.appendEvent(parseEvent(l));
            break;
          } catch (e) {
            if (attempt >= 10) throw e;
            callerRetries++;
          }
        }
      }
      emulator.clearFaults();
      const used = rules.map((r, i) => [60, 30, 12, 12, 12][i]! - r.remaining);
      expect(used.every((u) => u > 0), `every kind of fault was injected: ${used}`).to.equal(true);
      // Give writes that were delayed past their timeout time to land before comparing.
      await new Promise((r) => setTimeout(r, 800));
      const [a, b] = [await observe(clean, lines), await observe(faulty, lines)];
      expect(b).to.deep.equal(a);
      expect(b.count).to.equal(lines.length);
      console.log(`      faults injected: ${used.join(' / ')} (429 / 503 / late response / lost request / reset); caller retries: ${callerRetries}`);
    } finally {
      emulator.clearFaults();
      await clean.close();
      await faulty.close();
    }
  });
});
