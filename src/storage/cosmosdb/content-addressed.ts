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
