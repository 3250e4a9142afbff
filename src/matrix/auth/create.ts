import type { RoomEvent } from '../../types/event.js';
import { ROOM_VERSIONS, type RoomVersionRules } from '../room-versions.js';
import { ALLOWED, type AuthResult, domainOf, isUserID, rejected } from './views.js';

/** Whether the event's JSON states a `room_id` (a v12 create event must not: its room ID is its own hash). */
function statesRoomID(event: RoomEvent): boolean {
  try {
    const pdu = JSON.parse(event.json) as Record<string, unknown>;
    return pdu.room_id !== undefined;
  } catch {
    return false;
  }
}

/** The m.room.create rule: the first event of a room, checked against nothing but itself. */
export function checkCreateEvent(rules: RoomVersionRules, event: RoomEvent): AuthResult {
  if (event.prevEventIDs.length > 0) return rejected('a create event has no prev_events');
  if (rules.roomIDFromCreateEvent) {
    if (statesRoomID(event)) return rejected(`a room version ${rules.id} create event has no room_id: the room ID is its hash`);
  } else if (domainOf(event.roomID) !== domainOf(event.sender)) {
    return rejected(`the room ID's server ${domainOf(event.roomID)} is not the sender's ${domainOf(event.sender)}`);
  }
  const version = event.content.room_version;
  if (version !== undefined && (typeof version !== 'string' || !ROOM_VERSIONS.has(version))) {
    return rejected(`content.room_version ${JSON.stringify(version)} is not a known room version`);
  }
  if (rules.createContentHasCreator && event.content.creator === undefined) return rejected('content.creator is missing');
  if (rules.auth.privilegedCreators) {
    const additional = event.content.additional_creators;
    if (additional !== undefined && !(Array.isArray(additional) && additional.every(isUserID))) {
      return rejected('content.additional_creators is not a list of user IDs');
    }
  }
  return ALLOWED;
}
