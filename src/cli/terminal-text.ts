/**
 * Text from files (labels in a config, names in messages) made safe to print on a terminal: characters that a
 * terminal or a text renderer would act on instead of showing are written as `\uXXXX` escapes. That covers the C0
 * controls (ESC starts escape sequences), DEL, the C1 controls (U+009B is a one-character CSI on many terminals), the
 * bidirectional controls (U+202E turns the rest of a line around: "txt.exe" shows as "exe.txt"), zero-width and
 * invisible format characters, and the line and paragraph separators.
 */

/** C0 except tab/LF/CR, DEL, C1, ALM, zero-width and bidi marks, LS/PS, bidi embeddings/overrides, isolates, BOM. */
const UNSAFE_KEEP_NEWLINES = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;
/** The same, tabs and line breaks included. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

const escape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** `s` with every terminal-active character escaped; `keepNewlines` leaves tabs and line breaks of messages alone. */
export function terminalText(s: string, { keepNewlines = false } = {}): string {
  return s.replace(keepNewlines ? UNSAFE_KEEP_NEWLINES : UNSAFE, escape);
}

/**
 * JSON.stringify(value) for a terminal: JSON.stringify escapes C0 controls but sends DEL, C1 and bidi controls raw.
 * They can only occur inside JSON strings, where a `\uXXXX` escape is equivalent, so the output parses to the same
 * value and shows no active character.
 */
export function terminalJson(value: unknown): string {
  return JSON.stringify(value).replace(UNSAFE, escape);
}
