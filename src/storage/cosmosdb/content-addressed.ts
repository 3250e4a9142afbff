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
