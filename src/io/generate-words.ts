/** The words of the synthetic room generator: display names, messages, topics, room names and reasons. */

export const FIRST_NAMES = [
  'Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank', 'Grace', 'Heidi', 'Ivan', 'Judy', 'Mallory', 'Niaj',
  'Olivia', 'Peggy', 'Rupert', 'Sybil', 'Trent', 'Uma', 'Victor', 'Walter', 'Xena', 'Yusuf', 'Zoe', 'Amir',
  'Bea', 'Chen', 'Dmitri', 'Elif', 'Farah', 'Goran', 'Hana', 'Ines', 'Jonas', 'Kofi', 'Lena', 'Mateo',
];
export const LAST_NAMES = [
  'Smith', 'Jones', 'Garcia', 'Müller', 'Rossi', 'Kowalski', 'Nakamura', 'Okafor', 'Silva', 'Dubois',
  'Novak', 'Larsen', 'Petrov', 'Haddad', 'Kim', 'Nguyen', 'Andersson', 'Moreau', 'Costa', 'Yilmaz',
];
export const NICK_SUFFIXES = ['', '', '', ' (away)', ' 🌱', ' [bot]', ' | on holiday', ' (she/her)', ' (he/him)', ' ✨'];
export const WORDS = [
  'the', 'a', 'to', 'and', 'of', 'is', 'it', 'that', 'this', 'we', 'you', 'I', 'on', 'for', 'with', 'but', 'not',
  'server', 'room', 'event', 'state', 'sync', 'federation', 'homeserver', 'client', 'bridge', 'bot', 'key',
  'backup', 'upgrade', 'release', 'bug', 'fix', 'patch', 'deploy', 'database', 'postgres', 'sqlite', 'cache',
  'latency', 'timeline', 'thread', 'reply', 'reaction', 'emoji', 'avatar', 'name', 'topic', 'invite', 'join',
  'leave', 'ban', 'kick', 'power', 'level', 'moderator', 'admin', 'works', 'broken', 'slow', 'fast', 'again',
  'today', 'tomorrow', 'yesterday', 'maybe', 'definitely', 'thanks', 'hello', 'hi', 'ok', 'lol', 'yes', 'no',
  'please', 'sorry', 'great', 'interesting', 'weird', 'really', 'just', 'now', 'later', 'soon', 'still',
  'anyone', 'everyone', 'here', 'there', 'know', 'think', 'seen', 'tried', 'restart', 'logs', 'error',
  'works-for-me', 'ETA', 'PR', 'issue', 'merged', 'review', 'test', 'tests', 'CI', 'green', 'red', 'coffee',
];
export const TOPIC_PREFIXES = ['Discussion of', 'All about', 'Help and chat for', 'Announcements:', 'Off-topic chatter on', 'Planning'];
export const TOPIC_SUBJECTS = [
  'homeserver operations', 'the storage layer', 'federation quirks', 'bridges and bots', 'release planning',
  'state resolution', 'performance work', 'the weekly meetup', 'client development', 'room upgrades',
];
export const ROOM_NAMES = [
  'General', 'Synthetic Room', 'Storage Chat', 'Homeserver Ops', 'Federation Lounge', 'Dev Talk', 'Random',
  'Support', 'Announcements', 'Offtopic', 'Benchmarks', 'Watercooler',
];
export const KICK_REASONS = ['Spam', 'Off-topic', 'Please read the rules', 'Inactive', ''];
export const BAN_REASONS = ['Spam', 'Abuse', 'Repeated rule violations', 'Bot account'];
export const REDACTION_REASONS = ['Spam', 'Posted by mistake', 'Wrong room', 'Off-topic', 'Duplicate', 'Contained personal data'];
