// Errors for malformed dataset files. Every message names the file, the line (1-based, where the
// format has lines) and the field, so a user can open the file at the right place.

export interface RecordLocation {
  file: string;
  /** 1-based line number in the file (CSV row, JSONL line, or the line where a JSON record starts). */
  line?: number;
  /** Record index within the file (0-based), for formats without meaningful lines. */
  record?: number;
  field?: string;
}

export function describeLocation(loc: RecordLocation): string {
  const parts = [loc.file];
  if (loc.line !== undefined) parts.push(`line ${loc.line}`);
  else if (loc.record !== undefined) parts.push(`record ${loc.record}`);
  if (loc.field !== undefined) parts.push(`field '${loc.field}'`);
  return parts.join(', ');
}

/** A malformed record or file. `code` is MEDTUNE_BAD_DATA; `location` says where. */
export class DataError extends Error {
  override name = 'DataError';
  readonly code = 'MEDTUNE_BAD_DATA';
  constructor(readonly location: RecordLocation, readonly reason: string) {
    super(`${describeLocation(location)}: ${reason}`);
  }
}

/** A record left out under skip-bad, with the reason it was rejected. */
export interface SkippedRecord {
  location: RecordLocation;
  reason: string;
  message: string;
}

/**
 * How a reader treats malformed records: fail on the first (the default), or skip them and keep
 * a count and the reasons (the CLI's --skip-bad), so a run over a slightly broken download still
 * says exactly what it left out.
 */
export class BadRecordPolicy {
  readonly skipped: SkippedRecord[] = [];
  constructor(readonly skipBad = false) {}

  /** Runs `fn` for one record; under skip-bad a DataError becomes a skipped record and undefined. */
  guard<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      if (!this.skipBad || !(err instanceof DataError)) throw err;
      this.skipped.push({ location: err.location, reason: err.reason, message: err.message });
      return undefined;
    }
  }

  get skippedCount(): number {
    return this.skipped.length;
  }

  /** One line for logs: "skipped 3 malformed records (first: file, line 7, field 'answer': missing)". */
  summary(): string | null {
    if (this.skipped.length === 0) return null;
    return `skipped ${this.skipped.length} malformed record${this.skipped.length === 1 ? '' : 's'} (first: ${this.skipped[0]!.message})`;
  }
}

export interface ReadOptions {
  /** Skip malformed records instead of failing; they are listed in the result's `skipped`. */
  skipBad?: boolean;
}

export interface ReadResult<T> {
  file: string;
  examples: T[];
  skipped: SkippedRecord[];
}
