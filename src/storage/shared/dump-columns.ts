import type { StateEntry } from '../../types/state.js';
import type { DumpEntry, DumpRows, DumpTableName } from '../tables/dump.js';
import { assignContentKeys } from './content-keys.js';
import { contentKey, decodeBlockList, decodeStateBlock, encodeBlockList, encodeStateBlock } from './state-codec.js';

/**
 * The dump's rows as the SQL drivers store them, written once for both: each logical table's SQL table and the
 * column that holds each field. SQLite and PostgreSQL use the same tables and column names (Dendrite's); what
 * differs is small and stays in each driver's dump.ts: how a flag and a NID list are encoded (a `Dialect`), the
 * primary key a table is paged by, the column that keeps insertion order (SQLite's rowid, PostgreSQL's identity),
 * and the columns a driver computes on write (hashes, counts).
 */
export type ColumnKind = 'int' | 'text' | 'nullableText' | 'bool' | 'nidList' | 'blockEntries' | 'blockList';

/** Column -> [the field it holds, how it is stored]. */
export type ColumnMap<R> = Readonly<Record<string, readonly [keyof R & string, ColumnKind]>>;

/** The two encodings the SQL drivers do not share. */
export interface Dialect {
  readonly bool: { encode(b: boolean): unknown; decode(v: unknown): boolean };
  readonly nidList: { encode(nids: readonly number[]): unknown; decode(v: unknown): number[] };
}

/** Invites and redactions also carry `seq`, in the column each driver keeps insertion order in. */
export const DUMP_COLUMNS: { readonly [K in DumpTableName]: { readonly table: string; readonly columns: ColumnMap<DumpRows[K]> } } = {
  event_types: { table: 'roomserver_event_types', columns: { event_type_nid: ['nid', 'int'], event_type: ['type', 'text'] } },
  event_state_keys: { table: 'roomserver_event_state_keys', columns: { event_state_key_nid: ['nid', 'int'], event_state_key: ['key', 'text'] } },
  rooms: {
    table: 'roomserver_rooms',
    columns: {
      room_nid: ['nid', 'int'], room_id: ['roomID', 'text'], latest_event_nids: ['latest', 'nidList'], last_event_sent_nid: ['lastSent', 'int'],
      state_snapshot_nid: ['snapshot', 'int'], room_version: ['version', 'text'],
    },
  },
  events: {
    table: 'roomserver_events',
    columns: {
      event_nid: ['nid', 'int'], room_nid: ['room', 'int'], event_type_nid: ['type', 'int'], event_state_key_nid: ['key', 'int'],
      sent_to_output: ['sent', 'bool'], state_snapshot_nid: ['snapshot', 'int'], depth: ['depth', 'int'], event_id: ['eventID', 'text'],
      auth_event_nids: ['auth', 'nidList'], is_rejected: ['rejected', 'bool'],
    },
  },
  event_json: { table: 'roomserver_event_json', columns: { event_nid: ['nid', 'int'], event_json: ['json', 'text'] } },
  state_blocks: { table: 'roomserver_state_block', columns: { state_block_nid: ['nid', 'int'], entries: ['entries', 'blockEntries'] } },
  state_snapshots: {
    table: 'roomserver_state_snapshots',
    columns: { state_snapshot_nid: ['nid', 'int'], room_nid: ['room', 'int'], block_list: ['blocks', 'blockList'] },
  },
  membership: {
    table: 'roomserver_membership',
    columns: {
      room_nid: ['room', 'int'], target_nid: ['target', 'int'], sender_nid: ['sender', 'int'], membership_nid: ['membership', 'int'],
      event_nid: ['event', 'int'], target_local: ['local', 'bool'], forgotten: ['forgotten', 'bool'],
    },
  },
  previous_events: { table: 'roomserver_previous_events', columns: { previous_event_id: ['prev', 'text'], event_nid: ['nid', 'int'] } },
  invites: {
    table: 'roomserver_invites',
    columns: {
      invite_event_id: ['id', 'text'], room_nid: ['room', 'int'], target_nid: ['target', 'int'], sender_nid: ['sender', 'int'],
      retired: ['retired', 'bool'], invite_event_json: ['json', 'text'],
    },
  },
  redactions: {
    table: 'roomserver_redactions',
    columns: { redaction_event_id: ['id', 'text'], redacts_event_id: ['redacts', 'text'], validated: ['validated', 'bool'] },
  },
  room_aliases: { table: 'roomserver_room_aliases', columns: { alias: ['alias', 'text'], room_id: ['roomID', 'text'], creator_id: ['creator', 'text'] } },
  published: {
    table: 'roomserver_published',
    columns: { room_id: ['roomID', 'text'], appservice_id: ['appserviceID', 'text'], network_id: ['networkID', 'text'], published: ['published', 'bool'] },
  },
  reported_events: {
    table: 'roomserver_reported_events',
    columns: {
      id: ['id', 'int'], room_nid: ['room', 'int'], event_nid: ['event', 'int'], reporting_user_nid: ['reporter', 'int'],
      event_sender_nid: ['sender', 'int'], reason: ['reason', 'text'], score: ['score', 'int'], received_ts: ['receivedTS', 'int'],
    },
  },
  user_room_keys: {
    table: 'roomserver_user_room_keys',
    columns: { user_nid: ['user', 'int'], room_nid: ['room', 'int'], pseudo_id_key: ['privateKey', 'nullableText'], pseudo_id_pub_key: ['publicKey', 'text'] },
  },
  transactions: {
    table: 'roomserver_transactions',
    columns: { transaction_id: ['transactionID', 'text'], session_id: ['sessionID', 'int'], user_id: ['userID', 'text'], event_id: ['eventID', 'text'] },
  },
  federation_blacklist: { table: 'federationsender_blacklist', columns: { server_name: ['server', 'text'] } },
  device_keys: {
    table: 'keyserver_device_keys',
    columns: {
      user_id: ['userID', 'text'], device_id: ['deviceID', 'text'], ts_added_secs: ['tsAdded', 'int'], key_json: ['keyJSON', 'text'],
      stream_id: ['streamID', 'int'], display_name: ['displayName', 'nullableText'],
    },
  },
  one_time_keys: {
    table: 'keyserver_one_time_keys',
    columns: {
      user_id: ['userID', 'text'], device_id: ['deviceID', 'text'], algorithm: ['algorithm', 'text'], key_id: ['keyID', 'text'],
      ts_added_secs: ['tsAdded', 'int'], key_json: ['keyJSON', 'text'],
    },
  },
  fallback_keys: {
    table: 'keyserver_fallback_keys',
    columns: {
      user_id: ['userID', 'text'], device_id: ['deviceID', 'text'], algorithm: ['algorithm', 'text'], key_id: ['keyID', 'text'],
      ts_added_secs: ['tsAdded', 'int'], key_json: ['keyJSON', 'text'], used: ['used', 'bool'],
    },
  },
  key_changes: { table: 'keyserver_key_changes', columns: { user_id: ['userID', 'text'], change_id: ['changeID', 'int'] } },
  cross_signing_keys: { table: 'keyserver_cross_signing_keys', columns: { user_id: ['userID', 'text'], key_type: ['keyType', 'int'], key_data: ['keyData', 'text'] } },
  cross_signing_sigs: {
    table: 'keyserver_cross_signing_sigs',
    columns: {
      target_user_id: ['targetUserID', 'text'], target_key_id: ['targetKeyID', 'text'], origin_user_id: ['originUserID', 'text'],
      origin_key_id: ['originKeyID', 'text'], signature: ['signature', 'text'],
    },
  },
  stale_device_lists: {
    table: 'keyserver_stale_device_lists',
    columns: { user_id: ['userID', 'text'], domain: ['domain', 'text'], is_stale: ['stale', 'bool'], ts_added_secs: ['tsAdded', 'int'] },
  },
  key_backup_versions: {
    table: 'userapi_key_backup_versions',
    columns: {
      version: ['version', 'int'], user_id: ['userID', 'text'], algorithm: ['algorithm', 'text'], auth_data: ['authData', 'text'],
      etag: ['etag', 'text'], deleted: ['deleted', 'bool'],
    },
  },
  key_backups: {
    table: 'userapi_key_backups',
    columns: {
      user_id: ['userID', 'text'], version: ['version', 'text'], room_id: ['roomID', 'text'], session_id: ['sessionID', 'text'],
      first_message_index: ['firstMessageIndex', 'int'], forwarded_count: ['forwardedCount', 'int'], is_verified: ['verified', 'bool'],
      session_data: ['sessionData', 'text'],
    },
  },
  send_to_device: {
    table: 'syncapi_send_to_device',
    columns: { id: ['id', 'int'], user_id: ['userID', 'text'], device_id: ['deviceID', 'text'], content: ['content', 'text'], sent_at: ['sentAt', 'int'] },
  },
  partition_offsets: { table: 'partition_offsets', columns: { topic: ['topic', 'text'], partition: ['partition', 'int'], partition_offset: ['offset', 'int'] } },
};

/** What a driver adds to a table's shared columns. */
export interface DriverTable<R> {
  /** The primary key's columns: the paging order (read with the row even where no field is kept in them). */
  readonly key: readonly string[];
  /** Columns of the driver's own that hold fields (the insertion order's). */
  readonly extraColumns?: ColumnMap<R>;
  /** Columns computed from the row on write (hashes, counts); a column given here is not encoded again. */
  readonly derived?: (record: R) => Record<string, unknown>;
}

/** A table's mapping for one SQL driver: what its dump.ts pages, reads and writes with. */
export interface SqlDumpSpec<R> {
  readonly table: string;
  readonly key: readonly string[];
  /** The columns read, in SELECT order (the key's among them). */
  readonly columns: readonly string[];
  /** Every column that holds a field, and how. */
  readonly kinds: Readonly<Record<string, ColumnKind>>;
  readonly fromRow: (row: Record<string, unknown>) => R;
  /** Column -> value for an INSERT (every column the table needs, the key's and the derived ones included). */
  readonly toRow: (record: R) => Record<string, unknown>;
}

const entriesOf = (bytes: Uint8Array): DumpEntry[] => decodeStateBlock(bytes).map((e) => [e.eventTypeNID, e.eventStateKeyNID, e.eventNID] as const);
const entriesFrom = (entries: readonly DumpEntry[]): StateEntry[] =>
  entries.map(([t, k, e]) => ({ eventTypeNID: t, eventStateKeyNID: k, eventNID: e }) as StateEntry);

function decode(dialect: Dialect, kind: ColumnKind, v: unknown): unknown {
  switch (kind) {
    case 'int': return Number(v);
    case 'text': return String(v);
    case 'nullableText': return v === null ? null : String(v);
    case 'bool': return dialect.bool.decode(v);
    case 'nidList': return dialect.nidList.decode(v);
    case 'blockEntries': return entriesOf(v as Uint8Array);
    case 'blockList': return decodeBlockList(v as Uint8Array);
  }
}

function encode(dialect: Dialect, kind: ColumnKind, v: unknown): unknown {
  switch (kind) {
    case 'bool': return dialect.bool.encode(v as boolean);
    case 'nidList': return dialect.nidList.encode(v as number[]);
    case 'blockEntries': return encodeStateBlock(entriesFrom(v as DumpEntry[])).bytes;
    case 'blockList': return encodeBlockList(v as number[]);
    default: return v;
  }
}

/** The state block a row's entries encode to: its bytes, first content key and entry count, as both SQL tables store them. */
export function encodedBlockColumns(record: DumpRows['state_blocks']): { content_key: number; entry_count: number; entries: Buffer } {
  const block = encodeStateBlock(entriesFrom(record.entries));
  return { content_key: contentKey(block.bytes), entry_count: block.entries.length, entries: block.bytes };
}

/** A snapshot row's first content key (its block list is encoded as a `blockList` column). */
export function encodedListColumns(record: DumpRows['state_snapshots']): { content_key: number } {
  return { content_key: contentKey(encodeBlockList(record.blocks)) };
}

/** The tables whose rows carry a content key (state-codec.ts), by the column of the NID a key belongs to. */
const CONTENT_KEYED: Partial<Record<DumpTableName, string>> = { state_blocks: 'state_block_nid', state_snapshots: 'state_snapshot_nid' };

/**
 * Moves each row's content key past keys the target holds for another NID, or that an earlier row of the page
 * takes (content-keys.ts): a page written as it is would otherwise hit the unique index, or, with SQLite's
 * INSERT OR REPLACE, delete the row that held the key. Other tables' rows are left as they are.
 */
export async function probeContentKeys(name: DumpTableName, rows: Record<string, unknown>[],
  holders: (keys: readonly number[]) => Promise<ReadonlyMap<number, number>>): Promise<void> {
  const nidColumn = CONTENT_KEYED[name];
  if (!nidColumn) return;
  const keys = await assignContentKeys(name, rows.map((r) => ({ nid: Number(r[nidColumn]), key: r.content_key as number })), holders);
  rows.forEach((r, i) => { r.content_key = keys[i]; });
}

/** The table a content-keyed dump table is stored in, and its NID column; undefined for other tables. */
export function contentKeyedTable(name: DumpTableName): { table: string; nidColumn: string } | undefined {
  const nidColumn = CONTENT_KEYED[name];
  return nidColumn ? { table: DUMP_COLUMNS[name].table, nidColumn } : undefined;
}

export function sqlDumpSpec<K extends DumpTableName>(name: K, dialect: Dialect, driver: DriverTable<DumpRows[K]>): SqlDumpSpec<DumpRows[K]> {
  const { table, columns: shared } = DUMP_COLUMNS[name] as { table: string; columns: ColumnMap<DumpRows[K]> };
  const mapped = Object.entries({ ...shared, ...driver.extraColumns });
  return {
    table,
    key: driver.key,
    columns: [...new Set([...driver.key, ...mapped.map(([column]) => column)])],
    kinds: Object.fromEntries(mapped.map(([column, [, kind]]) => [column, kind])),
    fromRow: (row) => Object.fromEntries(mapped.map(([column, [field, kind]]) => [field, decode(dialect, kind, row[column])])) as DumpRows[K],
    toRow: (record) => {
      const row: Record<string, unknown> = { ...driver.derived?.(record) };
      for (const [column, [field, kind]] of mapped) if (!(column in row)) row[column] = encode(dialect, kind, record[field]);
      return row;
    },
  };
}
