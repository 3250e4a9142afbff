/** For GetBulkStateContent: the one content key that summarises each well-known state event type. */
const CONTENT_KEY: Readonly<Record<string, string>> = {
  'm.room.create': 'creator',
  'm.room.canonical_alias': 'alias',
  'm.room.history_visibility': 'history_visibility',
  'm.room.join_rules': 'join_rule',
  'm.room.member': 'membership',
  'm.room.name': 'name',
  'm.room.avatar': 'url',
  'm.room.topic': 'topic',
  'm.room.guest_access': 'guest_access',
};

/** The summarising value when it is a string, "" otherwise (an unknown type, a missing or non-string value). */
export function extractContentValue(eventType: string, content: Readonly<Record<string, unknown>>): string {
  const key = CONTENT_KEY[eventType];
  const value = key === undefined ? undefined : content[key];
  return typeof value === 'string' ? value : '';
}
