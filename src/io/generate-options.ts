/**
 * The options of the synthetic room generator (src/io/generate-room.ts): their defaults and bounds, and the check
 * that fills the defaults and refuses a bad option with an InvalidInputError naming it.
 */
import { InvalidInputError } from '../types/errors.js';
import { MAX_ID_BYTES, preview } from '../types/input.js';
import { ROOM_VERSIONS } from '../matrix/room-versions.js';

export interface GenerateOptions {
  /** Distinct users who join over the room's life, the creator included (default 2000 in the CLI). */
  members: number;
  /** Total events, the initial ones included (default 20000 in the CLI). */
  events: number;
  /** PRNG seed: the same options give byte-identical output. */
  seed: number;
  /** Default "!synthetic-<seed>:<first server name>". */
  roomID?: string;
  /** Servers users live on; default ["example.org", "matrix.org", "remote.net"]; the creator is on the first. */
  serverNames?: string[];
  /** Share of events that are state events, default 0.2 (one in five). */
  stateFraction?: number;
  /** Default "10". */
  roomVersion?: string;
  /**
   * Share of messages sent on a concurrent branch, default 0 (a line): such a message names the event before the
   * latest as its prev event and arrives after the latest (late, on a fork), and the next event merges the two.
   */
  forkShare?: number;
}

export const DEFAULT_SERVER_NAMES: readonly string[] = Object.freeze(['example.org', 'matrix.org', 'remote.net']);

export const GENERATE_DEFAULTS = Object.freeze({
  members: 2000,
  events: 20_000,
  seed: 1,
  stateFraction: 0.2,
  roomVersion: '10',
  forkShare: 0,
});

/** create, the creator's join, power_levels, join_rules, history_visibility, name, topic. */
export const INITIAL_EVENTS = 7;
/** Bounds that keep the per-user arrays sane (a few bytes per member) and the counters exact. */
export const MAX_MEMBERS = 10_000_000;
export const MAX_EVENTS = 2_000_000_000;

function integerOption(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new InvalidInputError(`generate option ${name} must be an integer, got ${preview(value)}`);
  }
  if (value < min || value > max) {
    throw new InvalidInputError(`generate option ${name} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

const SERVER_NAME = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$/;

/**
 * Checks generate options and fills the defaults. Throws InvalidInputError naming the bad option.
 * Options other than those of GenerateOptions are ignored (and left out of the result).
 */
export function validateGenerateOptions(o: Partial<GenerateOptions>): Required<GenerateOptions> {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new InvalidInputError(`generate options must be an object, got ${preview(o)}`);
  }
  const members = integerOption('members', o.members ?? GENERATE_DEFAULTS.members, 1, MAX_MEMBERS);
  const events = integerOption('events', o.events ?? GENERATE_DEFAULTS.events, 1, MAX_EVENTS);
  const minEvents = members + INITIAL_EVENTS - 1;
  if (events < minEvents) {
    throw new InvalidInputError(
      `generate option events must be at least members + ${INITIAL_EVENTS - 1} = ${minEvents} ` +
        `(the ${INITIAL_EVENTS} initial events and one join for each of the other ${members - 1} members), got ${events}`,
    );
  }
  const seed = integerOption('seed', o.seed ?? GENERATE_DEFAULTS.seed, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);

  const stateFraction = o.stateFraction ?? GENERATE_DEFAULTS.stateFraction;
  if (typeof stateFraction !== 'number' || !Number.isFinite(stateFraction) || stateFraction < 0 || stateFraction > 1) {
    throw new InvalidInputError(`generate option stateFraction must be a number between 0 and 1, got ${preview(stateFraction)}`);
  }

  const forkShare = o.forkShare ?? GENERATE_DEFAULTS.forkShare;
  if (typeof forkShare !== 'number' || !Number.isFinite(forkShare) || forkShare < 0 || forkShare > 1) {
    throw new InvalidInputError(`generate option forkShare must be a number between 0 and 1, got ${preview(forkShare)}`);
  }

  const roomVersion = o.roomVersion ?? GENERATE_DEFAULTS.roomVersion;
  const rules = typeof roomVersion === 'string' ? ROOM_VERSIONS.get(roomVersion) : undefined;
  if (!rules) {
    throw new InvalidInputError(`generate option roomVersion must be a room version from 3 to 12, got ${preview(roomVersion)}`);
  }
  if (rules.eventID === 'stated') {
    throw new InvalidInputError(
      `generate option roomVersion ${roomVersion} is not supported: the generator writes room v3+ events ` +
        `(event IDs computed from the events, prev_events and auth_events as plain ID strings)`,
    );
  }
  if (rules.roomIDFromCreateEvent && o.roomID !== undefined) {
    throw new InvalidInputError(`generate option roomID cannot be given for room version ${roomVersion}: its room ID is computed from its create event`);
  }

  const serverNamesRaw = o.serverNames ?? DEFAULT_SERVER_NAMES;
  if (!Array.isArray(serverNamesRaw) || serverNamesRaw.length === 0) {
    throw new InvalidInputError(`generate option serverNames must be a non-empty array of server names, got ${preview(serverNamesRaw)}`);
  }
  const serverNames: string[] = [];
  const longestUser = `@user${members}:`;
  for (const [i, name] of (serverNamesRaw as unknown[]).entries()) {
    if (typeof name !== 'string' || !SERVER_NAME.test(name)) {
      throw new InvalidInputError(`generate option serverNames[${i}] must be a server name like "example.org", got ${preview(name)}`);
    }
    if (Buffer.byteLength(longestUser + name, 'utf8') > MAX_ID_BYTES) {
      throw new InvalidInputError(
        `generate option serverNames[${i}] is too long: user IDs on it would exceed ${MAX_ID_BYTES} bytes: ${preview(name)}`,
      );
    }
    if (serverNames.includes(name)) {
      throw new InvalidInputError(`generate option serverNames[${i}] repeats ${preview(name)}`);
    }
    serverNames.push(name);
  }

  // A v12 room's ID is only known once its create event is made: "" until then (see RoomGenerator).
  const roomID = rules.roomIDFromCreateEvent ? '' : o.roomID ?? `!synthetic-${seed}:${serverNames[0]}`;
  if (!rules.roomIDFromCreateEvent) checkRoomIDOption(roomID);
  return { members, events, seed, roomID, serverNames, stateFraction, roomVersion, forkShare };
}

function checkRoomIDOption(roomID: unknown): void {
  if (typeof roomID !== 'string' || !roomID.startsWith('!') || roomID.indexOf(':') < 2 || roomID.endsWith(':')) {
    throw new InvalidInputError(`generate option roomID must look like "!opaque:server", got ${preview(roomID)}`);
  }
  if (Buffer.byteLength(roomID, 'utf8') > MAX_ID_BYTES || /[\u0000-\u001f\s]/.test(roomID)) {
    throw new InvalidInputError(
      `generate option roomID must be at most ${MAX_ID_BYTES} bytes without spaces or control characters, got ${preview(roomID)}`,
    );
  }
}

/**
 * The number of state events a room with these (validated) options gets: stateFraction of the events, but
 * never fewer than the initial events plus one join for each member other than the creator.
 */
export function plannedStateEvents(o: Pick<GenerateOptions, 'members' | 'events' | 'stateFraction'>): number {
  const wanted = Math.round((o.stateFraction ?? GENERATE_DEFAULTS.stateFraction) * o.events);
  return Math.min(o.events, Math.max(INITIAL_EVENTS + o.members - 1, wanted));
}
