/**
 * Keys as the user room keys table stores them: unpadded base64 text, so that every driver (and a dump) holds them
 * the same way and a public key can be matched as a string.
 */
export const keyToText = (key: Uint8Array): string => Buffer.from(key).toString('base64').replace(/=+$/, '');
export const keyFromText = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));
