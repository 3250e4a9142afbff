import { createStorage } from '../src/index.ts';
const s = await createStorage({ backend: 'sqlite', sqlite: { path: '/tmp/warm.db' } });
const entries = Array.from({ length: 100000 }, (_, i) => ({ eventTypeNID: 1 + (i % 5), eventStateKeyNID: 1 + i, eventNID: 1 + i * 3 })) as any;
let snap = await s.roomserver.addState(1 as any, [], entries);
// add 30 small deltas
for (let i = 0; i < 30; i++) { const [l] = await s.roomserver.stateBlockNIDs([snap]); snap = await s.roomserver.addState(1 as any, l!.stateBlockNIDs, [{ eventTypeNID: 9, eventStateKeyNID: 1 + i, eventNID: 500000 + i }] as any); }
for (let r = 0; r < 30; r++) { const t0 = performance.now(); const st = await s.roomserver.loadStateAtSnapshot(snap); console.log(r, st.length, (performance.now() - t0).toFixed(1)); }
await s.close();
