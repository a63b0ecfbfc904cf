// Reading Hugging Face config.json files: typed field access whose errors name the file and the
// field, and the errors for configurations medtune does not support.
import { readFileSync } from 'node:fs';

export type ConfigObject = Record<string, unknown>;

/** A config.json that cannot be used: unreadable, malformed, or naming an unsupported model. */
export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
  constructor(message: string, readonly code: 'MEDTUNE_BAD_CONFIG' | 'MEDTUNE_UNSUPPORTED_MODEL' = 'MEDTUNE_BAD_CONFIG') {
    super(message);
  }
}

export function readConfigFile(path: string): ConfigObject {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ModelConfigError(e.code === 'ENOENT' ? `${path}: no such file (a Hugging Face model directory has a config.json)` : `${path}: ${e.message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ModelConfigError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ModelConfigError(`${path}: expected a JSON object`);
  return value as ConfigObject;
}

/** Typed reads from one config object; `where` names it in errors ("config.json", "config.json: text_config"). */
export class ConfigReader {
  constructor(readonly config: ConfigObject, readonly where: string) {}

  has(key: string): boolean {
    return this.config[key] !== undefined && this.config[key] !== null;
  }

  private fail(key: string, expected: string): never {
    throw new ModelConfigError(`${this.where}: "${key}" must be ${expected}, got ${JSON.stringify(this.config[key])}`);
  }

  int(key: string, fallback?: number): number {
    const v = this.config[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) throw new ModelConfigError(`${this.where}: "${key}" is missing`);
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(key, 'an integer');
    return v;
  }

  positiveInt(key: string, fallback?: number): number {
    const v = this.int(key, fallback);
    if (v <= 0) this.fail(key, 'a positive integer');
    return v;
  }

  number(key: string, fallback?: number): number {
    const v = this.config[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) throw new ModelConfigError(`${this.where}: "${key}" is missing`);
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, 'a number');
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.config[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v;
  }

  string(key: string, fallback?: string): string {
    const v = this.config[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) throw new ModelConfigError(`${this.where}: "${key}" is missing`);
      return fallback;
    }
    if (typeof v !== 'string') this.fail(key, 'a string');
    return v;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    const v = this.string(key, fallback);
    if (!(allowed as readonly string[]).includes(v)) {
      throw new ModelConfigError(`${this.where}: "${key}" is '${v}'; medtune supports ${allowed.map((a) => `'${a}'`).join(', ')}`, 'MEDTUNE_UNSUPPORTED_MODEL');
    }
    return v as T;
  }

  object(key: string): ConfigReader | null {
    const v = this.config[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(key, 'an object');
    return new ConfigReader(v as ConfigObject, `${this.where}: ${key}`);
  }

  /** An integer or a list of integers, as a list. */
  ints(key: string, fallback: number[]): number[] {
    const v = this.config[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'number' && Number.isInteger(v)) return [v];
    if (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x))) return v as number[];
    this.fail(key, 'an integer or a list of integers');
  }

  /** Number of labels: num_labels, else the size of id2label. */
  numLabels(fallback: number): number {
    if (this.has('num_labels')) return this.int('num_labels');
    const id2label = this.config['id2label'];
    if (id2label && typeof id2label === 'object') return Object.keys(id2label).length;
    return fallback;
  }
}
