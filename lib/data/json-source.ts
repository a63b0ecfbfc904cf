// JSON and JSON Lines files with line numbers: syntax errors and record errors name the line a
// user sees in an editor. JSON.parse does the parsing; a single scan finds where each top-level
// array element (or object member) starts.
import { readFileSync } from 'node:fs';
import { DataError } from './errors.ts';

export interface JsonRecord {
  value: unknown;
  /** 1-based line where the record starts. */
  line: number;
  /** 0-based position in the file's array (or line order in JSONL). */
  index: number;
  /** For object-of-records files (e.g. split -> records), the member key. */
  key?: string;
}

export function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new DataError({ file }, e.code === 'ENOENT' ? 'file not found' : `cannot read: ${e.message}`);
  }
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** JSON.parse with a syntax error that names file and line. */
export function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = (err as Error).message;
    // V8 names the position for some errors only; otherwise a validating scan finds it.
    const pos = /position (\d+)/.exec(message);
    const offset = pos ? Number(pos[1]) : jsonErrorOffset(text);
    const line = offset === null ? undefined : lineAt(text, offset);
    const short = message.replace(/^JSON\.parse: /, '').replace(/, "[\s\S]*" is not valid JSON$/, '');
    throw new DataError({ file, ...(line === undefined ? {} : { line }) }, `invalid JSON: ${short}`);
  }
}

/** Offset of the first JSON syntax error (a small validating scanner), or null if none is found. */
export function jsonErrorOffset(text: string): number | null {
  let i = 0;
  const n = text.length;
  class Stop { constructor(readonly at: number) {} }
  const ws = () => { while (i < n && ' \t\n\r\uFEFF'.includes(text[i]!)) i++; };
  const fail = (): never => { throw new Stop(i); };
  const literal = (word: string) => { if (text.startsWith(word, i)) i += word.length; else fail(); };
  const string = () => {
    i++;
    while (i < n && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail();
      i += text[i] === '\\' ? 2 : 1;
    }
    if (i >= n) fail();
    i++;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++; ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        string(); ws();
        if (text[i] !== ':') fail();
        i++; value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return; }
        fail();
      }
    } else if (c === '[') {
      i++; ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return; }
        fail();
      }
    } else if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else {
      const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 64));
      if (!m) fail();
      i += m![0].length;
    }
  };
  try {
    value(); ws();
    return i < n ? i : null;
  } catch (e) {
    if (e instanceof Stop) return e.at;
    throw e;
  }
}

/**
 * Start offsets of the direct children of the top-level value (array elements or object member
 * values, with their keys), found by one pass that tracks strings and nesting.
 */
function childOffsets(text: string): { offset: number; key?: string }[] {
  const out: { offset: number; key?: string }[] = [];
  let depth = 0;
  let i = 0;
  let expectValue = false;
  let pendingKey: string | undefined;
  let topIsObject = false;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === '"') {
      const start = i;
      i++;
      while (i < n && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      if (depth === 1) {
        if (topIsObject && !expectValue) pendingKey = JSON.parse(text.slice(start, i)) as string;
        else if (expectValue) { out.push({ offset: start, ...(pendingKey === undefined ? {} : { key: pendingKey }) }); expectValue = false; }
      }
      continue;
    }
    if (c === '{' || c === '[') {
      if (depth === 0) { topIsObject = c === '{'; expectValue = !topIsObject; }
      else if (depth === 1 && expectValue) { out.push({ offset: i, ...(pendingKey === undefined ? {} : { key: pendingKey }) }); expectValue = false; }
      depth++;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (depth === 1) {
      if (c === ',') expectValue = !topIsObject;
      else if (c === ':') expectValue = true;
      else if (expectValue && !/\s/.test(c)) { out.push({ offset: i, ...(pendingKey === undefined ? {} : { key: pendingKey }) }); expectValue = false; }
    }
    i++;
  }
  return out;
}

function linesOf(text: string, offsets: number[]): number[] {
  const lines: number[] = [];
  let line = 1;
  let pos = 0;
  for (const off of offsets) {
    for (; pos < off; pos++) if (text.charCodeAt(pos) === 10) line++;
    lines.push(line);
  }
  return lines;
}

/** A JSON file whose top level is an array of records. */
export function readJsonArray(file: string, text = readText(file)): JsonRecord[] {
  const value = parseJson(text, file);
  if (!Array.isArray(value)) throw new DataError({ file, line: 1 }, `expected a JSON array of records, found ${describeType(value)}`);
  const lines = linesOf(text, childOffsets(text).map((c) => c.offset));
  return value.map((v, index) => ({ value: v, index, line: lines[index] ?? 1 }));
}

/** A JSON file whose top level is an object; each member value with its key and line. */
export function readJsonObject(file: string, text = readText(file)): { value: Record<string, unknown>; members: JsonRecord[] } {
  const value = parseJson(text, file);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new DataError({ file, line: 1 }, `expected a JSON object, found ${describeType(value)}`);
  }
  const children = childOffsets(text);
  const lines = linesOf(text, children.map((c) => c.offset));
  const members = children.map((c, index) => ({ value: (value as Record<string, unknown>)[c.key!], key: c.key!, index, line: lines[index]! }));
  return { value: value as Record<string, unknown>, members };
}

/** A JSON Lines file: one record per non-blank line. */
export function readJsonLines(file: string, text = readText(file)): JsonRecord[] {
  const out: JsonRecord[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const s = raw.trim();
    if (s === '') return;
    let value: unknown;
    try {
      value = JSON.parse(s);
    } catch (err) {
      throw new DataError({ file, line: i + 1 }, `invalid JSON: ${(err as Error).message}`);
    }
    out.push({ value, line: i + 1, index: out.length });
  });
  return out;
}

/** JSON array or JSON Lines, by content: a file starting with '[' is an array. */
export function readJsonRecords(file: string): JsonRecord[] {
  const text = readText(file);
  const first = text.replace(/^\uFEFF/, '').trimStart()[0];
  return first === '[' ? readJsonArray(file, text) : readJsonLines(file, text);
}

export function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Typed field access on one JSON record with errors naming file, line and field. */
export class JsonFields {
  constructor(readonly file: string, readonly record: JsonRecord) {
    if (record.value === null || typeof record.value !== 'object' || Array.isArray(record.value)) {
      throw this.error(undefined, `expected an object, found ${describeType(record.value)}`);
    }
  }
  get obj(): Record<string, unknown> {
    return this.record.value as Record<string, unknown>;
  }
  error(field: string | undefined, reason: string): DataError {
    return new DataError({ file: this.file, line: this.record.line, ...(field === undefined ? {} : { field }) }, reason);
  }
  has(field: string): boolean {
    return this.obj[field] !== undefined && this.obj[field] !== null;
  }
  string(field: string): string {
    const v = this.obj[field];
    if (v === undefined || v === null) throw this.error(field, 'missing');
    if (typeof v !== 'string') throw this.error(field, `expected a string, found ${describeType(v)}`);
    return v;
  }
  /** A string, or a number rendered as text (answers like 3 in VQA-RAD's JSON). */
  text(field: string): string {
    const v = this.obj[field];
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    return this.string(field);
  }
  optionalString(field: string): string | undefined {
    return this.has(field) ? this.text(field) : undefined;
  }
  /** A string id or a numeric id as text. */
  id(field: string): string {
    const v = this.obj[field];
    if (typeof v === 'number') return String(v);
    return this.string(field);
  }
  array(field: string): unknown[] {
    const v = this.obj[field];
    if (v === undefined || v === null) throw this.error(field, 'missing');
    if (!Array.isArray(v)) throw this.error(field, `expected an array, found ${describeType(v)}`);
    return v;
  }
}

/**
 * For an object whose members are arrays of records ({"train": [{...}, ...], "test": [...]}):
 * member key -> the line where each record starts. One scan of the text.
 */
export function arrayMemberRecordLines(text: string): Map<string, number[]> {
  const perKey = new Map<string, number[]>();
  let depth = 0;
  let line = 1;
  let currentKey: string | null = null;
  let lastString: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\n') { line++; continue; }
    if (c === '"') {
      const start = i;
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\n') line++;
        i += text[i] === '\\' ? 2 : 1;
      }
      if (depth === 1) lastString = JSON.parse(text.slice(start, i + 1)) as string;
      continue;
    }
    if (c === '[' || c === '{') {
      if (depth === 1 && c === '[') { currentKey = lastString ?? ''; perKey.set(currentKey, []); }
      else if (depth === 2 && currentKey !== null) perKey.get(currentKey)!.push(line);
      depth++;
    } else if (c === ']' || c === '}') {
      depth--;
      if (depth === 1) currentKey = null;
    }
  }
  return perKey;
}
