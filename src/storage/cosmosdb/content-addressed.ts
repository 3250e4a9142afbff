import { unique } from '../shared/contracts.js';
import type { CosmosConnection, SequenceName } from './connection.js';
import type { Doc } from './requests.js';

/**
 * The shape state blocks and snapshots share on Cosmos DB: content documents keyed by NID (`<kind>|<NID>`, what
 * readers load with point reads) and a deterministic index keyed by the content hash (`<kind>h|<hash>` -> NID).
 * A new content gets a NID, its content document, then its hash document: creating that is the commit point.
 * Two writers storing the same content at once both create content documents; the one whose hash document loses
 * (409) removes its own content document and returns the winner's NID, so the same content always has one NID.
 */
export async function storeContentAddressed(
  conn: CosmosConnection, kind: 'sb' | 'ss', sequence: SequenceName, hash: Buffer, content: Record<string, unknown>,
): Promise<number> {
  const r = conn.requests;
  const hashRef = tenantHashRef(conn, kind, hash.toString('hex'));
  const known = await r.read<{ nid: number }>(`${kind}.lookupHash`, hashRef.id, hashRef.pk);
  if (known) return known.nid;
  const nid = await conn.sequence(sequence).nextValue();
  await r.create(`${kind}.insert`, { id: kind, pk: conn.pk(kind, nid), k: kind, nid, ...content });
  if (await r.create(`${kind}.insert`, { ...hashRef, k: `${kind}h`, nid })) return nid;
  const winner = await r.read<{ nid: number }>(`${kind}.lookupHash`, hashRef.id, hashRef.pk);
  if (winner?.nid !== nid) await r.delete(`${kind}.insert`, kind, conn.pk(kind, nid));
  return winner?.nid ?? nid;
}

/**
 * storeContentAddressed for many contents, in bulk: the hash documents are read first, so that a content stored
 * already (a re-import, an import resumed after a crash) takes its stored NID and no new one from the sequence;
 * then fresh NIDs for the rest, their content documents, then their hash documents; a hash created meanwhile by
 * another writer gives that writer's NID, and our content document is removed. One to five bulk requests for the
 * lot; NIDs in the order given.
 */
export async function storeContentAddressedMany(
  conn: CosmosConnection, kind: 'sb' | 'ss', sequence: SequenceName, items: readonly { hash: Buffer; content: Record<string, unknown> }[],
  /**
   * Contents (by hex hash) that cannot be stored yet (a snapshot naming a block no snapshot has named), whose lookup
   * is skipped: should one be stored after all (another writer raced to it), its hash document's 409 gives its NID.
   */
  isNew: (hash: string) => boolean = () => false,
  /** The room whose partition may index the contents too (see storeBlocksAndSnapshots): looked up there as well. */
  roomNID?: number,
): Promise<number[]> {
  const hashRef = (hash: string) => tenantHashRef(conn, kind, hash);
  const byHash = new Map<string, { content: Record<string, unknown>; nid: number }>();
  for (const item of items) if (!byHash.has(item.hash.toString('hex'))) byHash.set(item.hash.toString('hex'), { content: item.content, nid: 0 });
  if (byHash.size === 0) return [];
  const hashes = [...byHash.keys()].filter((hash) => !isNew(hash));
  const stored = await lookUpHashes(conn, kind, hashes, roomNID);
  for (const hash of hashes) byHash.get(hash)!.nid = stored.get(hash)!;
  const fresh = [...byHash].filter(([, c]) => c.nid === 0);
  for (const [, c] of fresh) c.nid = await conn.sequence(sequence).nextValue();
  if (fresh.length > 0) await createContentAddressed(conn, kind, fresh, hashRef);
  if (kind === 'sb') for (const [, c] of fresh) conn.newBlocks.set(c.nid, true);
  return items.map((item) => byHash.get(item.hash.toString('hex'))!.nid);
}

/** Creates the content documents, then the hash documents; a hash another writer created first gives its NID. */
async function createContentAddressed(conn: CosmosConnection, kind: 'sb' | 'ss', fresh: [string, { content: Record<string, unknown>; nid: number }][],
  hashRef: (hash: string) => { id: string; pk: string }): Promise<void> {
  const r = conn.requests;
  await r.createMany(`${kind}.insert`, fresh.map(([, c]) => ({ id: kind, pk: conn.pk(kind, c.nid), k: kind, nid: c.nid, ...c.content })));
  const claimed = await r.createMany(`${kind}.insert`, fresh.map(([hash, c]) => ({ ...hashRef(hash), k: `${kind}h`, nid: c.nid })));
  const taken = fresh.filter((_, i) => !claimed[i]);
  if (taken.length === 0) return;
  const winners = await r.readMany<{ nid: number }>(`${kind}.lookupHash`, taken.map(([hash]) => hashRef(hash)));
  const orphans: { id: string; pk: string }[] = [];
  taken.forEach(([, c], i) => {
    const winner = winners[i]?.nid;
    if (winner === undefined || winner === c.nid) return;
    conn.newBlocks.delete(c.nid);
    orphans.push({ id: kind, pk: conn.pk(kind, c.nid) });
    c.nid = winner;
  });
  if (orphans.length > 0) await r.deleteMany(`${kind}.insert`, orphans);
}

/**
 * The NIDs stored under these content hashes (0 where none), in one bulk request: the room's index where a room is
 * given (storeBlocksAndSnapshots), and the tenant-wide one.
 */
async function lookUpHashes(conn: CosmosConnection, kind: 'sb' | 'ss', hashes: readonly string[], roomNID?: number): Promise<Map<string, number>> {
  const refs = (h: string) => [...(roomNID === undefined ? [] : [roomHashRef(conn, kind, roomNID, h)]), tenantHashRef(conn, kind, h)];
  const docs = await conn.requests.readMany<{ nid: number }>(`${kind}.lookupHash`, hashes.flatMap(refs));
  const per = roomNID === undefined ? 1 : 2;
  return new Map(hashes.map((h, i) => [h, docs.slice(per * i, per * i + per).find((d) => d !== undefined)?.nid ?? 0]));
}

/** A content's tenant-wide index document: `sbh|<hash>` or `ssh|<hash>`, a partition each. */
function tenantHashRef(conn: CosmosConnection, kind: 'sb' | 'ss', hash: string) {
  return { id: `${kind}h`, pk: conn.pk(`${kind}h`, hash) };
}

/** A content's index document in the room's partition (see storeBlocksAndSnapshots): `sbh|<hash>` or `ssh|<hash>`. */
export function roomHashRef(conn: CosmosConnection, kind: 'sb' | 'ss', roomNID: number, hash: string) {
  return { id: `${kind}h|${hash}`, pk: conn.pk('room', roomNID) };
}

/** What storeBlocksAndSnapshots does with the index documents of what it stores: `stage` them for the room's commit. */
export type StageIndex = (docs: readonly Doc[]) => boolean;

/**
 * New state blocks and the snapshots naming them, written together (StateSnapshotTable.bulkInsertBlocksAndStates).
 * Their index documents (hash -> NID) live in the room's partition and go in the room's commit (`stage`), or are
 * written at once when no commit follows; lookups read them and the tenant-wide ones (`sbh|`, `ssh|`) that layouts
 * before 4 and the table's own calls write. The blocks a plan makes are new but for a rare coincidence, so their
 * contents, and those of the snapshots naming them, go out under fresh NIDs in the same bulk request as the blocks'
 * lookups: one request where storing blocks, then snapshots, took five. A block found stored after all leaves this
 * call's documents as garbage nobody names (and their NIDs unused), and the snapshots are stored on the stored block.
 * Lists naming no new block are looked up the same way first. The room's commit decides between writers of one room
 * (its condition), so an index document never loses a race to another.
 */
export async function storeBlocksAndSnapshots(
  conn: CosmosConnection, roomNID: number, blocks: readonly { hash: Buffer; content: Record<string, unknown>; surelyNew: boolean }[],
  lists: readonly (readonly (number | { readonly block: number })[])[], hashList: (blocks: readonly number[]) => Buffer, stage: StageIndex,
): Promise<{ blockNIDs: number[]; stateNIDs: number[] }> {
  const r = conn.requests;
  const hex = (b: Buffer) => b.toString('hex');
  const lookUp = (kind: 'sb' | 'ss', hashes: readonly string[]) => lookUpHashes(conn, kind, hashes, roomNID);
  const blockHashes = blocks.map((b) => hex(b.hash));
  const distinct = unique(blockHashes);
  const contentOf = new Map(blocks.map((b, i) => [blockHashes[i]!, b.content]));
  // Fresh NIDs for the blocks that are surely new now, for the others once the lookups say they are new: state
  // stored already takes no NID.
  const fresh = new Map<string, number>();
  const surely = new Set(blocks.filter((b) => b.surelyNew).map((b) => hex(b.hash)));
  for (const hash of distinct) if (surely.has(hash)) fresh.set(hash, await conn.sequence('stateBlock').nextValue());
  const blockDoc = (h: string) => ({ id: 'sb', pk: conn.pk('sb', fresh.get(h)!), k: 'sb', nid: fresh.get(h)!, room: roomNID, ...contentOf.get(h)! });
  const snapshotDoc = (nid: number, l: readonly number[]) => ({ id: 'ss', pk: conn.pk('ss', nid), k: 'ss', nid, room: roomNID, blocks: [...l] });
  const resolve = (nidOf: (hash: string) => number) => lists.map((l) => l.map((b) => (typeof b === 'number' ? b : nidOf(blockHashes[b.block]!))));
  const newSnapshots = async (resolved: number[][], isNew: Set<number>) => {
    const out = new Map<string, { nid: number; blocks: number[] }>();
    for (const l of resolved) {
      const h = hex(hashList(l));
      if (l.some((b) => isNew.has(b)) && !out.has(h)) out.set(h, { nid: await conn.sequence('stateSnapshot').nextValue(), blocks: l });
    }
    return out;
  };
  // Only a call's state that names one of its own new events is surely new: written with the lookups. If every
  // block is, so are the snapshots naming them; else those wait for the lookups.
  const allNew = distinct.every((h) => surely.has(h));
  const speculative = resolve((h) => fresh.get(h)!);
  let naming = allNew ? await newSnapshots(speculative, new Set(fresh.values())) : new Map<string, { nid: number; blocks: number[] }>();
  const [storedBlocks] = await Promise.all([
    lookUp('sb', distinct),
    r.createMany('sb.insert', [...distinct.filter((h) => surely.has(h)).map(blockDoc), ...[...naming].map(([, x]) => snapshotDoc(x.nid, x.blocks))]),
  ]);
  // The blocks that were not surely new and are not stored: written now.
  const unsure = distinct.filter((h) => !surely.has(h) && storedBlocks.get(h) === 0);
  for (const h of unsure) fresh.set(h, await conn.sequence('stateBlock').nextValue());
  if (unsure.length > 0) await r.createMany('sb.insert', unsure.map(blockDoc));
  const hit = distinct.filter((h) => storedBlocks.get(h) !== 0);
  const nidOf = new Map(distinct.map((h) => [h, storedBlocks.get(h) || fresh.get(h)!]));
  const newBlocks = distinct.filter((h) => storedBlocks.get(h) === 0);
  let resolved = speculative;
  if (hit.length > 0 || !allNew) {
    // A block stored already: the lists on the stored blocks, and the snapshots naming the others made afresh.
    resolved = resolve((h) => nidOf.get(h)!);
    naming = await newSnapshots(resolved, new Set(newBlocks.map((h) => fresh.get(h)!)));
    if (naming.size > 0) await r.createMany('ss.insert', [...naming].map(([, x]) => snapshotDoc(x.nid, x.blocks)));
  }
  // Lists naming no new block may be stored already.
  const others = unique(resolved.map((l) => hex(hashList(l))).filter((h) => !naming.has(h)));
  const storedLists = others.length > 0 ? await lookUp('ss', others) : new Map<string, number>();
  const missing = others.filter((h) => storedLists.get(h) === 0);
  for (const h of missing) {
    const l = resolved.find((x) => hex(hashList(x)) === h)!;
    const nid = await conn.sequence('stateSnapshot').nextValue();
    naming.set(h, { nid, blocks: l });
  }
  if (missing.length > 0) await r.createMany('ss.insert', missing.map((h) => snapshotDoc(naming.get(h)!.nid, naming.get(h)!.blocks)));
  // The index of what names the call's own new events is the room's (no other room can hold it); of the rest,
  // tenant-wide, as the table's own calls keep it (the same content in another room, the empty state, share a NID).
  const roomsOwn = new Set([...surely].filter((h) => newBlocks.includes(h)).map((h) => fresh.get(h)!));
  const own = ([, x]: [string, { blocks: number[] }]) => x.blocks.some((b) => roomsOwn.has(b));
  const index = [
    ...newBlocks.filter((h) => roomsOwn.has(fresh.get(h)!)).map((h) => ({ ...roomHashRef(conn, 'sb', roomNID, h), k: 'sbh', nid: fresh.get(h)! })),
    ...[...naming].filter(own).map(([h, x]) => ({ ...roomHashRef(conn, 'ss', roomNID, h), k: 'ssh', nid: x.nid })),
  ];
  await Promise.all([
    index.length > 0 && !stage(index) ? r.upsertMany('sb.insert', index) : undefined,
    claimTenantHashes(conn, newBlocks.filter((h) => !roomsOwn.has(fresh.get(h)!)).map((h) => [h, fresh.get(h)!]), [...naming].filter((n) => !own(n))),
  ]);
  return {
    blockNIDs: blockHashes.map((h) => nidOf.get(h)!),
    stateNIDs: resolved.map((l) => {
      const h = hex(hashList(l));
      return naming.get(h)?.nid ?? storedLists.get(h)!;
    }),
  };
}

/**
 * Tenant-wide hash documents of new blocks and snapshots, in one bulk request. A snapshot's hash created first by
 * another writer gives that writer's NID (`x.nid` is changed), and this call's content document goes; a block's
 * keeps this call's (the content is the same; lookups give the winner's).
 */
async function claimTenantHashes(conn: CosmosConnection, blocks: readonly [string, number][], snapshots: readonly [string, { nid: number }][]): Promise<void> {
  if (blocks.length + snapshots.length === 0) return;
  const r = conn.requests;
  const ref = (kind: 'sb' | 'ss', hash: string) => tenantHashRef(conn, kind, hash);
  const claimed = await r.createMany('sb.insert', [
    ...blocks.map(([h, nid]) => ({ ...ref('sb', h), k: 'sbh', nid })),
    ...snapshots.map(([h, x]) => ({ ...ref('ss', h), k: 'ssh', nid: x.nid })),
  ]);
  const lost = snapshots.filter((_, i) => !claimed[blocks.length + i]);
  if (lost.length === 0) return;
  const winners = await r.readMany<{ nid: number }>('ss.lookupHash', lost.map(([h]) => ref('ss', h)));
  const orphans: { id: string; pk: string }[] = [];
  lost.forEach(([, x], i) => {
    const winner = winners[i]?.nid;
    if (winner === undefined || winner === x.nid) return;
    orphans.push({ id: 'ss', pk: conn.pk('ss', x.nid) });
    x.nid = winner;
  });
  if (orphans.length > 0) await r.deleteMany('ss.insert', orphans);
}
