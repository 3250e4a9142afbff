import { inject, injectable } from 'inversify';
import { CorruptionError } from '../../types/errors.js';
import type { StateEntry } from '../../types/state.js';
import { decodeStateBlock, encodeStateBlock, hashBlockList } from '../shared/state-codec.js';
import type { CopyProgress, DumpRows, DumpTable, DumpTableName, StoreDump } from '../tables/dump.js';
import type { Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';
import { textHash } from './string-nid-map.js';
import { transactionKeyHash } from './transactions.js';

/**
 * The dump of a PostgreSQL store: ../sqlite/dump.ts table for table, the same rows. The dialect differences, each
 * kept visible:
 * - every column has its PostgreSQL type in the spec: a page is written as one INSERT ... SELECT FROM unnest(one
 *   array per column), so each table has one statement text (the connection prepares each text once per pooled
 *   connection and keeps it) and as many parameters as it has columns, whatever the page size (no 65535 limit);
 * - NID lists are bigint[], passed as array literals in a text[] (unnest cannot take a ragged array of arrays);
 * - the columns SQLite keeps in rowid or AUTOINCREMENT are identity columns or columns with an owned sequence here:
 *   the dump carries their values and the write supplies them (OVERRIDING SYSTEM VALUE where the column is
 *   GENERATED ALWAYS), then raises the sequence past them in the same transaction;
 * - unique text keys that can be long are stored with a SHA-256 column beside them (event types, state keys,
 *   transactions: see migrations.ts), computed here on write as the tables compute them.
 */

/** The PostgreSQL type of a column as the dump reads and writes it. */
type PgType = 'bigint' | 'integer' | 'smallint' | 'boolean' | 'text' | 'bytea' | 'bigint[]';

/** How one logical table maps to its PostgreSQL table: key columns (for paging), and row <-> record. */
interface Spec<R> {
  readonly table: string;
  /** The primary key's columns: the paging order. */
  readonly key: readonly string[];
  /** Every column read or written, with its type (the key's and the derived ones among them). */
  readonly types: Readonly<Record<string, PgType>>;
  /** The columns read, in SELECT order (the key's among them). */
  readonly columns: readonly string[];
  readonly fromRow: (row: Record<string, unknown>) => R;
  /** Column -> value for an INSERT (every column the table needs, the key's included). */
  readonly toRow: (record: R) => Record<string, unknown>;
  /** The counter (see COUNTERS) whose sequence hands out a column written here: raised past the values written. */
  readonly counter?: CounterName;
  /** A GENERATED ALWAYS identity column the write supplies: it takes OVERRIDING SYSTEM VALUE and no UPDATE may set it. */
  readonly alwaysIdentity?: string;
}

const n = (v: unknown) => Number(v);
const s = (v: unknown) => String(v);
const b = (v: unknown) => v === true;
const nids = (v: unknown) => (v as unknown[]).map(Number);

const entriesOf = (bytes: Buffer) => decodeStateBlock(bytes).map((e) => [e.eventTypeNID, e.eventStateKeyNID, e.eventNID] as const);
const entriesFrom = (entries: readonly (readonly [number, number, number])[]): StateEntry[] =>
  entries.map(([t, k, e]) => ({ eventTypeNID: t, eventStateKeyNID: k, eventNID: e }) as StateEntry);

/**
 * Each counter's sequence, by the column it hands out values to (resolved with pg_get_serial_sequence: identity
 * columns and the sequences migrations.ts makes OWNED BY a column alike). The first nine are the names every driver
 * reports; invite_seq and redaction_seq are PostgreSQL's own (SQLite's rowid needs no counter): the insertion order
 * a dump carries as `seq`. Room aliases' insertion column is not here: the dump does not carry it, so a write lets
 * the identity number the rows and nothing is left to raise.
 */
const COUNTERS = {
  event_nid: { table: 'roomserver_events', column: 'event_nid' },
  room_nid: { table: 'roomserver_rooms', column: 'room_nid' },
  event_type_nid: { table: 'roomserver_event_types', column: 'event_type_nid' },
  state_key_nid: { table: 'roomserver_event_state_keys', column: 'event_state_key_nid' },
  state_block_nid: { table: 'roomserver_state_block', column: 'state_block_nid' },
  state_snapshot_nid: { table: 'roomserver_state_snapshots', column: 'state_snapshot_nid' },
  key_backup_version: { table: 'userapi_key_backup_versions', column: 'version' },
  send_to_device_id: { table: 'syncapi_send_to_device', column: 'id' },
  key_change_id: { table: 'keyserver_key_changes', column: 'change_id' },
  invite_seq: { table: 'roomserver_invites', column: 'insertion' },
  redaction_seq: { table: 'roomserver_redactions', column: 'insertion' },
} as const;
type CounterName = keyof typeof COUNTERS;

/**
 * Every logical table of a dump on PostgreSQL. The order that matters (invites, redactions, send-to-device positions)
 * lives in identity columns, which a dump carries as `seq` or `id` and writes back as it was.
 */
const SPECS: { readonly [K in DumpTableName]: Spec<DumpRows[K]> } = {
  event_types: {
    table: 'roomserver_event_types', key: ['event_type_nid'], columns: ['event_type_nid', 'event_type'], counter: 'event_type_nid',
    types: { event_type_nid: 'bigint', event_type_hash: 'bytea', event_type: 'text' },
    fromRow: (r) => ({ nid: n(r.event_type_nid), type: s(r.event_type) }),
    toRow: (x) => ({ event_type_nid: x.nid, event_type_hash: textHash(x.type), event_type: x.type }),
  },
  event_state_keys: {
    table: 'roomserver_event_state_keys', key: ['event_state_key_nid'], columns: ['event_state_key_nid', 'event_state_key'], counter: 'state_key_nid',
    types: { event_state_key_nid: 'bigint', event_state_key_hash: 'bytea', event_state_key: 'text' },
    fromRow: (r) => ({ nid: n(r.event_state_key_nid), key: s(r.event_state_key) }),
    toRow: (x) => ({ event_state_key_nid: x.nid, event_state_key_hash: textHash(x.key), event_state_key: x.key }),
  },
  rooms: {
    table: 'roomserver_rooms', key: ['room_nid'], counter: 'room_nid',
    columns: ['room_nid', 'room_id', 'latest_event_nids', 'last_event_sent_nid', 'state_snapshot_nid', 'room_version'],
    types: { room_nid: 'bigint', room_id: 'text', latest_event_nids: 'bigint[]', last_event_sent_nid: 'bigint', state_snapshot_nid: 'bigint', room_version: 'text' },
    fromRow: (r) => ({
      nid: n(r.room_nid), roomID: s(r.room_id), version: s(r.room_version), latest: nids(r.latest_event_nids),
      lastSent: n(r.last_event_sent_nid), snapshot: n(r.state_snapshot_nid),
    }),
    toRow: (x) => ({
      room_nid: x.nid, room_id: x.roomID, latest_event_nids: x.latest, last_event_sent_nid: x.lastSent,
      state_snapshot_nid: x.snapshot, room_version: x.version,
    }),
  },
  events: {
    table: 'roomserver_events', key: ['event_nid'], counter: 'event_nid',
    columns: ['event_nid', 'room_nid', 'event_type_nid', 'event_state_key_nid', 'sent_to_output', 'state_snapshot_nid', 'depth', 'event_id', 'auth_event_nids', 'is_rejected'],
    types: {
      event_nid: 'bigint', room_nid: 'bigint', event_type_nid: 'bigint', event_state_key_nid: 'bigint', sent_to_output: 'boolean',
      state_snapshot_nid: 'bigint', depth: 'bigint', event_id: 'text', auth_event_nids: 'bigint[]', is_rejected: 'boolean',
    },
    fromRow: (r) => ({
      nid: n(r.event_nid), room: n(r.room_nid), type: n(r.event_type_nid), key: n(r.event_state_key_nid), eventID: s(r.event_id),
      auth: nids(r.auth_event_nids), depth: n(r.depth), rejected: b(r.is_rejected), snapshot: n(r.state_snapshot_nid), sent: b(r.sent_to_output),
    }),
    toRow: (x) => ({
      event_nid: x.nid, room_nid: x.room, event_type_nid: x.type, event_state_key_nid: x.key, sent_to_output: x.sent,
      state_snapshot_nid: x.snapshot, depth: x.depth, event_id: x.eventID, auth_event_nids: x.auth, is_rejected: x.rejected,
    }),
  },
  event_json: {
    table: 'roomserver_event_json', key: ['event_nid'], columns: ['event_nid', 'event_json'],
    types: { event_nid: 'bigint', event_json: 'text' },
    fromRow: (r) => ({ nid: n(r.event_nid), json: s(r.event_json) }),
    toRow: (x) => ({ event_nid: x.nid, event_json: x.json }),
  },
  state_blocks: {
    table: 'roomserver_state_block', key: ['state_block_nid'], columns: ['state_block_nid', 'entries'], counter: 'state_block_nid',
    types: { state_block_nid: 'bigint', state_block_hash: 'bytea', entry_count: 'bigint', entries: 'bytea' },
    fromRow: (r) => ({ nid: n(r.state_block_nid), entries: entriesOf(r.entries as Buffer) }),
    toRow: (x) => {
      const block = encodeStateBlock(entriesFrom(x.entries));
      return { state_block_nid: x.nid, state_block_hash: block.hash, entry_count: block.entries.length, entries: block.bytes };
    },
  },
  state_snapshots: {
    table: 'roomserver_state_snapshots', key: ['state_snapshot_nid'], columns: ['state_snapshot_nid', 'room_nid', 'state_block_nids'], counter: 'state_snapshot_nid',
    types: { state_snapshot_nid: 'bigint', state_snapshot_hash: 'bytea', room_nid: 'bigint', state_block_nids: 'bigint[]' },
    fromRow: (r) => ({ nid: n(r.state_snapshot_nid), room: n(r.room_nid), blocks: nids(r.state_block_nids) }),
    toRow: (x) => ({ state_snapshot_nid: x.nid, state_snapshot_hash: hashBlockList(x.blocks), room_nid: x.room, state_block_nids: x.blocks }),
  },
  membership: {
    table: 'roomserver_membership', key: ['room_nid', 'target_nid'],
    columns: ['room_nid', 'target_nid', 'sender_nid', 'membership_nid', 'event_nid', 'target_local', 'forgotten'],
    types: {
      room_nid: 'bigint', target_nid: 'bigint', sender_nid: 'bigint', membership_nid: 'bigint', event_nid: 'bigint', target_local: 'boolean', forgotten: 'boolean',
    },
    fromRow: (r) => ({
      room: n(r.room_nid), target: n(r.target_nid), sender: n(r.sender_nid), membership: n(r.membership_nid), event: n(r.event_nid),
      local: b(r.target_local), forgotten: b(r.forgotten),
    }),
    toRow: (x) => ({
      room_nid: x.room, target_nid: x.target, sender_nid: x.sender, membership_nid: x.membership, event_nid: x.event,
      target_local: x.local, forgotten: x.forgotten,
    }),
  },
  previous_events: {
    table: 'roomserver_previous_events', key: ['previous_event_id', 'event_nid'], columns: ['previous_event_id', 'event_nid'],
    types: { previous_event_id: 'text', event_nid: 'bigint' },
    fromRow: (r) => ({ prev: s(r.previous_event_id), nid: n(r.event_nid) }),
    toRow: (x) => ({ previous_event_id: x.prev, event_nid: x.nid }),
  },
  // Paged by the primary key (the event ID), not by insertion, which no unique index covers; `seq` is insertion.
  invites: {
    table: 'roomserver_invites', key: ['invite_event_id'], counter: 'invite_seq', alwaysIdentity: 'insertion',
    columns: ['invite_event_id', 'insertion', 'room_nid', 'target_nid', 'sender_nid', 'retired', 'invite_event_json'],
    types: {
      invite_event_id: 'text', insertion: 'bigint', room_nid: 'bigint', target_nid: 'bigint', sender_nid: 'bigint', retired: 'boolean', invite_event_json: 'text',
    },
    fromRow: (r) => ({
      id: s(r.invite_event_id), room: n(r.room_nid), target: n(r.target_nid), sender: n(r.sender_nid), retired: b(r.retired),
      json: s(r.invite_event_json), seq: n(r.insertion),
    }),
    toRow: (x) => ({
      invite_event_id: x.id, insertion: x.seq, room_nid: x.room, target_nid: x.target, sender_nid: x.sender, retired: x.retired, invite_event_json: x.json,
    }),
  },
  redactions: {
    table: 'roomserver_redactions', key: ['redaction_event_id'], counter: 'redaction_seq', alwaysIdentity: 'insertion',
    columns: ['redaction_event_id', 'insertion', 'redacts_event_id', 'validated'],
    types: { redaction_event_id: 'text', insertion: 'bigint', redacts_event_id: 'text', validated: 'boolean' },
    fromRow: (r) => ({ id: s(r.redaction_event_id), redacts: s(r.redacts_event_id), validated: b(r.validated), seq: n(r.insertion) }),
    toRow: (x) => ({ redaction_event_id: x.id, insertion: x.seq, redacts_event_id: x.redacts, validated: x.validated }),
  },
  room_aliases: {
    table: 'roomserver_room_aliases', key: ['alias'], columns: ['alias', 'room_id', 'creator_id'],
    types: { alias: 'text', room_id: 'text', creator_id: 'text' },
    fromRow: (r) => ({ alias: s(r.alias), roomID: s(r.room_id), creator: s(r.creator_id) }),
    toRow: (x) => ({ alias: x.alias, room_id: x.roomID, creator_id: x.creator }),
  },
  published: {
    table: 'roomserver_published', key: ['room_id'], columns: ['room_id', 'published'],
    types: { room_id: 'text', published: 'boolean' },
    fromRow: (r) => ({ roomID: s(r.room_id), published: b(r.published) }),
    toRow: (x) => ({ room_id: x.roomID, published: x.published }),
  },
  // Paged by the key hash, the primary key (the three parts themselves have no index).
  transactions: {
    table: 'roomserver_transactions', key: ['transaction_key_hash'],
    columns: ['transaction_key_hash', 'transaction_id', 'session_id', 'user_id', 'event_id'],
    types: { transaction_key_hash: 'bytea', transaction_id: 'text', session_id: 'bigint', user_id: 'text', event_id: 'text' },
    fromRow: (r) => ({ transactionID: s(r.transaction_id), sessionID: n(r.session_id), userID: s(r.user_id), eventID: s(r.event_id) }),
    toRow: (x) => ({ transaction_key_hash: transactionKeyHash(x), transaction_id: x.transactionID, session_id: x.sessionID, user_id: x.userID, event_id: x.eventID }),
  },
  federation_blacklist: {
    table: 'federationsender_blacklist', key: ['server_name'], columns: ['server_name'],
    types: { server_name: 'text' },
    fromRow: (r) => ({ server: s(r.server_name) }),
    toRow: (x) => ({ server_name: x.server }),
  },
  device_keys: {
    table: 'keyserver_device_keys', key: ['user_id', 'device_id'], columns: ['user_id', 'device_id', 'ts_added_secs', 'key_json', 'stream_id', 'display_name'],
    types: { user_id: 'text', device_id: 'text', ts_added_secs: 'bigint', key_json: 'text', stream_id: 'bigint', display_name: 'text' },
    fromRow: (r) => ({
      userID: s(r.user_id), deviceID: s(r.device_id), tsAdded: n(r.ts_added_secs), keyJSON: s(r.key_json), streamID: n(r.stream_id),
      displayName: r.display_name === null ? null : s(r.display_name),
    }),
    toRow: (x) => ({ user_id: x.userID, device_id: x.deviceID, ts_added_secs: x.tsAdded, key_json: x.keyJSON, stream_id: x.streamID, display_name: x.displayName }),
  },
  one_time_keys: {
    table: 'keyserver_one_time_keys', key: ['user_id', 'device_id', 'algorithm', 'key_id'],
    columns: ['user_id', 'device_id', 'algorithm', 'key_id', 'ts_added_secs', 'key_json'],
    types: { user_id: 'text', device_id: 'text', algorithm: 'text', key_id: 'text', ts_added_secs: 'bigint', key_json: 'text' },
    fromRow: (r) => ({
      userID: s(r.user_id), deviceID: s(r.device_id), algorithm: s(r.algorithm), keyID: s(r.key_id), tsAdded: n(r.ts_added_secs), keyJSON: s(r.key_json),
    }),
    toRow: (x) => ({ user_id: x.userID, device_id: x.deviceID, algorithm: x.algorithm, key_id: x.keyID, ts_added_secs: x.tsAdded, key_json: x.keyJSON }),
  },
  key_changes: {
    table: 'keyserver_key_changes', key: ['user_id'], columns: ['user_id', 'change_id'], counter: 'key_change_id',
    types: { user_id: 'text', change_id: 'bigint' },
    fromRow: (r) => ({ userID: s(r.user_id), changeID: n(r.change_id) }),
    toRow: (x) => ({ user_id: x.userID, change_id: x.changeID }),
  },
  cross_signing_keys: {
    table: 'keyserver_cross_signing_keys', key: ['user_id', 'key_type'], columns: ['user_id', 'key_type', 'key_data'],
    types: { user_id: 'text', key_type: 'smallint', key_data: 'text' },
    fromRow: (r) => ({ userID: s(r.user_id), keyType: n(r.key_type), keyData: s(r.key_data) }),
    toRow: (x) => ({ user_id: x.userID, key_type: x.keyType, key_data: x.keyData }),
  },
  cross_signing_sigs: {
    table: 'keyserver_cross_signing_sigs', key: ['target_user_id', 'target_key_id', 'origin_user_id'],
    columns: ['target_user_id', 'target_key_id', 'origin_user_id', 'origin_key_id', 'signature'],
    types: { target_user_id: 'text', target_key_id: 'text', origin_user_id: 'text', origin_key_id: 'text', signature: 'text' },
    fromRow: (r) => ({
      originUserID: s(r.origin_user_id), originKeyID: s(r.origin_key_id), targetUserID: s(r.target_user_id), targetKeyID: s(r.target_key_id), signature: s(r.signature),
    }),
    toRow: (x) => ({
      origin_user_id: x.originUserID, origin_key_id: x.originKeyID, target_user_id: x.targetUserID, target_key_id: x.targetKeyID, signature: x.signature,
    }),
  },
  stale_device_lists: {
    table: 'keyserver_stale_device_lists', key: ['user_id'], columns: ['user_id', 'domain', 'is_stale', 'ts_added_secs'],
    types: { user_id: 'text', domain: 'text', is_stale: 'boolean', ts_added_secs: 'bigint' },
    fromRow: (r) => ({ userID: s(r.user_id), domain: s(r.domain), stale: b(r.is_stale), tsAdded: n(r.ts_added_secs) }),
    toRow: (x) => ({ user_id: x.userID, domain: x.domain, is_stale: x.stale, ts_added_secs: x.tsAdded }),
  },
  key_backup_versions: {
    table: 'userapi_key_backup_versions', key: ['version'], columns: ['version', 'user_id', 'algorithm', 'auth_data', 'etag', 'deleted'],
    counter: 'key_backup_version', alwaysIdentity: 'version',
    types: { version: 'bigint', user_id: 'text', algorithm: 'text', auth_data: 'text', etag: 'text', deleted: 'boolean' },
    fromRow: (r) => ({ version: n(r.version), userID: s(r.user_id), algorithm: s(r.algorithm), authData: s(r.auth_data), etag: s(r.etag), deleted: b(r.deleted) }),
    toRow: (x) => ({ version: x.version, user_id: x.userID, algorithm: x.algorithm, auth_data: x.authData, etag: x.etag, deleted: x.deleted }),
  },
  key_backups: {
    table: 'userapi_key_backups', key: ['user_id', 'version', 'room_id', 'session_id'],
    columns: ['user_id', 'version', 'room_id', 'session_id', 'first_message_index', 'forwarded_count', 'is_verified', 'session_data'],
    types: {
      user_id: 'text', version: 'text', room_id: 'text', session_id: 'text', first_message_index: 'bigint', forwarded_count: 'bigint',
      is_verified: 'boolean', session_data: 'text',
    },
    fromRow: (r) => ({
      userID: s(r.user_id), version: s(r.version), roomID: s(r.room_id), sessionID: s(r.session_id), firstMessageIndex: n(r.first_message_index),
      forwardedCount: n(r.forwarded_count), verified: b(r.is_verified), sessionData: s(r.session_data),
    }),
    toRow: (x) => ({
      user_id: x.userID, version: x.version, room_id: x.roomID, session_id: x.sessionID, first_message_index: x.firstMessageIndex,
      forwarded_count: x.forwardedCount, is_verified: x.verified, session_data: x.sessionData,
    }),
  },
  send_to_device: {
    table: 'syncapi_send_to_device', key: ['id'], columns: ['id', 'user_id', 'device_id', 'content'], counter: 'send_to_device_id', alwaysIdentity: 'id',
    types: { id: 'bigint', user_id: 'text', device_id: 'text', content: 'text' },
    fromRow: (r) => ({ id: n(r.id), userID: s(r.user_id), deviceID: s(r.device_id), content: s(r.content) }),
    toRow: (x) => ({ id: x.id, user_id: x.userID, device_id: x.deviceID, content: x.content }),
  },
  partition_offsets: {
    table: 'partition_offsets', key: ['topic', 'partition'], columns: ['topic', 'partition', 'partition_offset'],
    types: { topic: 'text', partition: 'integer', partition_offset: 'bigint' },
    fromRow: (r) => ({ topic: s(r.topic), partition: n(r.partition), offset: n(r.partition_offset) }),
    toRow: (x) => ({ topic: x.topic, partition: x.partition, partition_offset: x.offset }),
  },
};

/** A key value as a cursor carries it (JSON): bytea as hex, the rest as read. */
const toCursor = (type: PgType, v: unknown): unknown => (type === 'bytea' ? (v as Buffer).toString('hex') : v);
const fromCursor = (type: PgType, v: unknown): unknown => (type === 'bytea' ? Buffer.from(v as string, 'hex') : v);

/** A column's values as the one array parameter unnest takes: NID lists as array literals, for a text[]. */
const columnParam = (type: PgType, values: unknown[]): unknown[] =>
  type === 'bigint[]' ? values.map((v) => `{${(v as number[]).join(',')}}`) : values;
const arrayType = (type: PgType): string => (type === 'bigint[]' ? 'text[]' : `${type}[]`);

/**
 * The INSERT one page of a table is written with (see the top of this file). A row already there takes the page's
 * values, except a GENERATED ALWAYS column, which no UPDATE may set: it keeps its value, which a page written again
 * carries unchanged anyway. In the page's order, so that an identity the dump does not carry (room aliases'
 * insertion) numbers the rows in the order given, as SQLite's rowid does.
 */
function insertStatement(spec: Spec<unknown>, columns: readonly string[]): string {
  const type = (c: string) => spec.types[c]!;
  const updatable = columns.filter((c) => !spec.key.includes(c) && c !== spec.alwaysIdentity);
  const onConflict = updatable.length === 0 ? 'DO NOTHING' : `DO UPDATE SET ${updatable.map((c) => `${c} = excluded.${c}`).join(', ')}`;
  return `INSERT INTO ${spec.table} (${columns.join(', ')}) ${spec.alwaysIdentity ? 'OVERRIDING SYSTEM VALUE ' : ''}
    SELECT ${columns.map((c) => (type(c) === 'bigint[]' ? `${c}::bigint[]` : c)).join(', ')}
    FROM unnest(${columns.map((c, i) => `$${i + 1}::${arrayType(type(c))}`).join(', ')}) WITH ORDINALITY AS t(${columns.join(', ')}, dump_position)
    ORDER BY dump_position
    ON CONFLICT (${spec.key.join(', ')}) ${onConflict}`;
}

/** The value a sequence has handed out last: last_value once nextval (or setval) was called, the one before otherwise. */
const HANDED_OUT = 'CASE WHEN is_called THEN last_value ELSE last_value - 1 END';

/** The dump of a PostgreSQL store: keyset paging over each table's primary key, rows written with INSERT ... ON CONFLICT. */
@injectable()
export class PostgresStoreDump implements StoreDump {
  /** Each counter's sequence, schema-qualified and quoted as the catalog gives it; looked up once. */
  private sequenceNames: Promise<Record<CounterName, string>> | undefined;

  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  table<K extends DumpTableName>(name: K): DumpTable<DumpRows[K]> {
    const spec = SPECS[name] as Spec<DumpRows[K]>;
    const conn = this.conn;
    const keyList = spec.key.join(', ');
    const keyTypes = spec.key.map((k) => spec.types[k]!);
    return {
      count: async () => (await conn.query<{ n: number }>(conn.autocommit, `SELECT count(*) AS n FROM ${spec.table}`)).rows[0]!.n,
      read: async (cursor, limit) => {
        const after = cursor === undefined ? undefined : (JSON.parse(cursor) as unknown[]).map((v, i) => fromCursor(keyTypes[i]!, v));
        // A row comparison over the key's columns: PostgreSQL walks the primary key's index from the cursor on.
        const where = after ? `WHERE (${keyList}) > (${keyTypes.map((t, i) => `$${i + 1}::${t}`).join(', ')})` : '';
        const params = [...(after ?? []), limit];
        const r = await conn.query(conn.autocommit,
          `SELECT ${spec.columns.join(', ')} FROM ${spec.table} ${where} ORDER BY ${keyList} LIMIT $${params.length}`, params);
        const last = r.rows.at(-1);
        return {
          rows: r.rows.map(spec.fromRow),
          next: r.rows.length === limit && last ? JSON.stringify(spec.key.map((k, i) => toCursor(keyTypes[i]!, last[k]))) : undefined,
        };
      },
      write: async (records) => {
        if (records.length === 0) return;
        await conn.transaction(async (tx) => {
          const rows = records.map(spec.toRow);
          const columns = Object.keys(rows[0]!);
          await conn.query(tx, insertStatement(spec as Spec<unknown>, columns),
            columns.map((c) => columnParam(spec.types[c]!, rows.map((row) => row[c]))));
          // Raised here, not only by raiseCounters: a copy raises the counters it is given, and a source of another
          // driver has no counter for PostgreSQL's own sequences (invite_seq, redaction_seq).
          if (spec.counter) {
            const column = COUNTERS[spec.counter].column;
            await this.raise(tx, spec.counter, Math.max(...rows.map((row) => Number(row[column]))));
          }
        });
      },
      delete: async (records) => {
        if (records.length === 0) return;
        const rows = records.map(spec.toRow);
        // One statement per page, the keys as one array per key column (as the writes pass their columns).
        await conn.transaction((tx) => conn.query(tx,
          `DELETE FROM ${spec.table} WHERE (${keyList}) IN (SELECT * FROM unnest(${keyTypes.map((t, i) => `$${i + 1}::${arrayType(t)}`).join(', ')}))`,
          spec.key.map((k) => columnParam(spec.types[k]!, rows.map((row) => row[k])))));
      },
    };
  }

  async reclaimSpace(): Promise<{ done: string }> {
    // Plain VACUUM (not FULL): it takes no lock that stops readers or writers, and cannot run in a transaction.
    for (const spec of Object.values(SPECS) as Spec<unknown>[]) await this.conn.query(this.conn.autocommit, `VACUUM (ANALYZE) ${spec.table}`);
    return {
      done: 'PostgreSQL: VACUUM made the deleted rows\' space reusable by new rows of the same tables (autovacuum would have done the same ' +
        'within minutes); the files keep their size, which only VACUUM FULL (an exclusive lock on each table) or pg_repack gives back to the system',
    };
  }

  async counters(): Promise<Record<string, number>> {
    const sequences = Object.entries(await this.sequences());
    const r = await this.conn.query<{ name: string; value: number }>(this.conn.autocommit, sequences
      .map(([, seq], i) => `SELECT $${i + 1}::text AS name, ${HANDED_OUT} AS value FROM ${seq}`).join(' UNION ALL '), sequences.map(([name]) => name));
    return Object.fromEntries(r.rows.map((row) => [row.name, row.value]));
  }

  raiseCounters(counters: Readonly<Record<string, number>>): Promise<void> {
    return this.conn.transaction(async (tx) => {
      for (const [name, value] of Object.entries(counters)) {
        if (Object.hasOwn(COUNTERS, name)) await this.raise(tx, name as CounterName, value);
      }
    });
  }

  async readProgress(): Promise<CopyProgress | undefined> {
    // Reading never creates the table (a store opened only to be checked may not allow CREATE): no table, no record.
    const auto = this.conn.autocommit;
    const present = await this.conn.query<{ present: boolean }>(auto, "SELECT to_regclass('matrix_storage_copy') IS NOT NULL AS present");
    if (!present.rows[0]!.present) return undefined;
    const r = await this.conn.query<{ value: string }>(auto, "SELECT value FROM matrix_storage_copy WHERE name = 'progress'");
    return r.rows[0] ? (JSON.parse(r.rows[0].value) as CopyProgress) : undefined;
  }

  async writeProgress(progress: CopyProgress | undefined): Promise<void> {
    const auto = this.conn.autocommit;
    // The copy's own bookkeeping, beside the migrations table in the store's schema (unqualified names resolve
    // through the connection's search_path, as the migrations' do); store-stats.ts leaves both out of the fingerprint.
    await this.conn.query(auto, 'CREATE TABLE IF NOT EXISTS matrix_storage_copy (name text PRIMARY KEY, value text NOT NULL)');
    if (progress === undefined) await this.conn.query(auto, "DELETE FROM matrix_storage_copy WHERE name = 'progress'");
    else {
      await this.conn.query(auto, `INSERT INTO matrix_storage_copy (name, value) VALUES ('progress', $1)
        ON CONFLICT (name) DO UPDATE SET value = excluded.value`, [JSON.stringify(progress)]);
    }
  }

  /**
   * Raises a counter's sequence to at least `value` (never lowers it, and leaves it alone when it is there already).
   * setval is not transactional: a rolled-back write leaves the sequence raised, which only skips values.
   */
  private async raise(tx: Tx, name: CounterName, value: number): Promise<void> {
    const seq = (await this.sequences())[name];
    await this.conn.query(tx, `SELECT setval($1::regclass, $2) FROM ${seq} WHERE ${HANDED_OUT} < $2`, [seq, value]);
  }

  /** Sequence names come from the catalog, never from input, so they go into the SQL text as the catalog quotes them. */
  private sequences(): Promise<Record<CounterName, string>> {
    this.sequenceNames ??= (async () => {
      const entries = Object.entries(COUNTERS);
      const r = await this.conn.query<{ name: CounterName; seq: string | null }>(this.conn.autocommit, `SELECT name,
        pg_get_serial_sequence(t, c) AS seq FROM unnest($1::text[], $2::text[], $3::text[]) AS x(name, t, c)`,
      [entries.map(([name]) => name), entries.map(([, v]) => v.table), entries.map(([, v]) => v.column)]);
      const missing = r.rows.filter((row) => row.seq === null).map((row) => row.name);
      if (missing.length > 0) throw new CorruptionError(`the PostgreSQL schema has no sequence for the counters ${missing.join(', ')}`);
      return Object.fromEntries(r.rows.map((row) => [row.name, row.seq!])) as Record<CounterName, string>;
    })();
    this.sequenceNames.catch(() => { this.sequenceNames = undefined; });
    return this.sequenceNames;
  }
}
