import { unique } from '../shared/contracts.js';
import type { CosmosConnection, SequenceName } from './connection.js';

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
  const hashRef = { id: `${kind}h`, pk: conn.pk(`${kind}h`, hash.toString('hex')) };
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
): Promise<number[]> {
  const r = conn.requests;
  const hashRef = (hash: string) => ({ id: `${kind}h`, pk: conn.pk(`${kind}h`, hash) });
  const byHash = new Map<string, { content: Record<string, unknown>; nid: number }>();
  for (const item of items) if (!byHash.has(item.hash.toString('hex'))) byHash.set(item.hash.toString('hex'), { content: item.content, nid: 0 });
  if (byHash.size === 0) return [];
  const hashes = [...byHash.keys()].filter((hash) => !isNew(hash));
  const stored = await r.readMany<{ nid: number }>(`${kind}.lookupHash`, hashes.map(hashRef));
  hashes.forEach((hash, i) => { if (stored[i]) byHash.get(hash)!.nid = stored[i]!.nid; });
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
 * New state blocks and the snapshots naming them, written together (StateSnapshotTable.bulkInsertBlocksAndStates):
 * the blocks' hash documents read (one bulk request), fresh NIDs for the new ones, the snapshots' hash documents read
 * for lists naming no new block (only if there are any), then every new content document in one bulk request and
 * every new hash document in one more: three requests where storing blocks, then snapshots, takes five. Should
 * another writer create a block's hash document first (the same block, at the same moment), the snapshots keep
 * naming this call's block, whose content is the same: that content then has two NIDs, both valid, and lookups give
 * the winner's.
 */
export async function storeBlocksAndSnapshots(
  conn: CosmosConnection, roomNID: number, blocks: readonly { hash: Buffer; content: Record<string, unknown> }[],
  lists: readonly (readonly (number | { readonly block: number })[])[], hashList: (blocks: readonly number[]) => Buffer,
): Promise<{ blockNIDs: number[]; stateNIDs: number[] }> {
  const r = conn.requests;
  const ref = (kind: 'sb' | 'ss', hash: string) => ({ id: `${kind}h`, pk: conn.pk(`${kind}h`, hash) });
  const blockHashes = blocks.map((b) => b.hash.toString('hex'));
  const storedBlocks = await r.readMany<{ nid: number }>('sb.lookupHash', unique(blockHashes).map((h) => ref('sb', h)));
  const blockNIDOf = new Map(unique(blockHashes).map((h, i) => [h, storedBlocks[i]?.nid ?? 0]));
  const freshBlocks = new Set<number>();
  for (const [hash, nid] of blockNIDOf) {
    if (nid !== 0) continue;
    const fresh = await conn.sequence('stateBlock').nextValue();
    blockNIDOf.set(hash, fresh);
    freshBlocks.add(fresh);
  }
  const blockNIDs = blockHashes.map((h) => blockNIDOf.get(h)!);
  const resolved = lists.map((l) => l.map((b) => (typeof b === 'number' ? b : blockNIDs[b.block]!)));
  const listHashes = resolved.map((l) => hashList(l).toString('hex'));
  // A list naming a block that is new is new itself; the others may be stored already.
  const maybeStored = unique(listHashes.filter((_, i) => !resolved[i]!.some((b) => freshBlocks.has(b))));
  const storedLists = maybeStored.length > 0 ? await r.readMany<{ nid: number }>('ss.lookupHash', maybeStored.map((h) => ref('ss', h))) : [];
  const stateNIDOf = new Map(maybeStored.map((h, i) => [h, storedLists[i]?.nid ?? 0]));
  const freshStates = new Map<string, { nid: number; blocks: number[] }>();
  for (const [i, hash] of listHashes.entries()) {
    if ((stateNIDOf.get(hash) ?? 0) !== 0 || freshStates.has(hash)) continue;
    freshStates.set(hash, { nid: await conn.sequence('stateSnapshot').nextValue(), blocks: resolved[i]! });
  }
  const newBlocks = unique(blockHashes).filter((h) => freshBlocks.has(blockNIDOf.get(h)!));
  const content = blocks.map((b, i) => [blockHashes[i]!, b.content] as const);
  await r.createMany('sb.insert', [
    ...newBlocks.map((h) => ({ id: 'sb', pk: conn.pk('sb', blockNIDOf.get(h)!), k: 'sb', nid: blockNIDOf.get(h)!, ...content.find(([x]) => x === h)![1] })),
    ...[...freshStates.values()].map((s) => ({ id: 'ss', pk: conn.pk('ss', s.nid), k: 'ss', nid: s.nid, room: roomNID, blocks: s.blocks })),
  ]);
  const hashDocs = [
    ...newBlocks.map((h) => ({ ...ref('sb', h), k: 'sbh', nid: blockNIDOf.get(h)! })),
    ...[...freshStates].map(([h, s]) => ({ ...ref('ss', h), k: 'ssh', nid: s.nid })),
  ];
  const claimed = await r.createMany('sb.insert', hashDocs);
  // A snapshot hash another writer created first: its NID, and this call's content document goes.
  const lostStates = [...freshStates].filter((_, i) => !claimed[newBlocks.length + i]);
  if (lostStates.length > 0) {
    const winners = await r.readMany<{ nid: number }>('ss.lookupHash', lostStates.map(([h]) => ref('ss', h)));
    const orphans: { id: string; pk: string }[] = [];
    lostStates.forEach(([, s], i) => {
      const winner = winners[i]?.nid;
      if (winner === undefined || winner === s.nid) return;
      orphans.push({ id: 'ss', pk: conn.pk('ss', s.nid) });
      s.nid = winner;
    });
    if (orphans.length > 0) await r.deleteMany('ss.insert', orphans);
  }
  return { blockNIDs, stateNIDs: listHashes.map((h) => freshStates.get(h)?.nid ?? stateNIDOf.get(h)!) };
}
