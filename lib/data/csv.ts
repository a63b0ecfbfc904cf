// A small RFC 4180 CSV reader that remembers the line each row starts on (quoted fields may span
// lines), so errors in the dataset readers can point at the line a user sees in an editor.
import { DataError } from './errors.ts';

export interface CsvRow {
  /** 1-based line on which the row starts. */
  line: number;
  cells: string[];
}

export interface CsvTable {
  file: string;
  header: string[];
  rows: CsvRow[];
}

/** Splits CSV text into rows of cells. A BOM is dropped; blank lines are skipped. */
export function parseCsvRows(text: string, file: string, delimiter = ','): CsvRow[] {
  const rows: CsvRow[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  const n = text.length;
  while (i < n) {
    const startLine = line;
    const cells: string[] = [];
    let cell = '';
    let atRowEnd = false;
    while (!atRowEnd) {
      if (text[i] === '"') {
        // Quoted field: "" is a literal quote; the field ends at a lone quote.
        const quoteLine = line;
        i++;
        for (;;) {
          if (i >= n) throw new DataError({ file, line: quoteLine }, 'unterminated quoted field');
          const ch = text[i]!;
          if (ch === '"') {
            if (text[i + 1] === '"') { cell += '"'; i += 2; continue; }
            i++;
            break;
          }
          if (ch === '\n') line++;
          cell += ch;
          i++;
        }
        // After the closing quote only a delimiter or the end of the row may follow.
        if (i < n && text[i] !== delimiter && text[i] !== '\n' && text[i] !== '\r') {
          throw new DataError({ file, line }, `unexpected character '${text[i]}' after a closing quote`);
        }
      } else {
        while (i < n && text[i] !== delimiter && text[i] !== '\n' && text[i] !== '\r') cell += text[i++];
      }
      cells.push(cell);
      cell = '';
      if (i >= n) atRowEnd = true;
      else if (text[i] === delimiter) i++;
      else {
        if (text[i] === '\r') i++;
        if (text[i] === '\n') i++;
        line++;
        atRowEnd = true;
      }
    }
    const blank = cells.length === 1 && cells[0] === '';
    if (!blank) rows.push({ line: startLine, cells });
  }
  return rows;
}

/** A CSV with a header row; every data row must have as many cells as the header. */
export function parseCsvTable(text: string, file: string, opts: { delimiter?: string; requireColumns?: readonly string[] } = {}): CsvTable {
  const rows = parseCsvRows(text, file, opts.delimiter ?? ',');
  const first = rows.shift();
  if (!first) throw new DataError({ file }, 'empty CSV file (no header row)');
  const header = first.cells.map((c) => c.trim());
  for (const col of opts.requireColumns ?? []) {
    if (!header.includes(col)) throw new DataError({ file, line: first.line, field: col }, `missing column (header has: ${header.join(', ')})`);
  }
  return { file, header, rows };
}

/** Cell access by column name with errors that name file, line and column. */
export class CsvRecord {
  constructor(readonly table: CsvTable, readonly row: CsvRow) {}

  get line(): number {
    return this.row.line;
  }

  has(column: string): boolean {
    return this.table.header.includes(column);
  }

  /** The raw cell ('' when empty). Throws when the column is absent or the row is short. */
  cell(column: string): string {
    const idx = this.table.header.indexOf(column);
    if (idx < 0) throw new DataError({ file: this.table.file, line: this.row.line, field: column }, 'no such column');
    if (this.row.cells.length !== this.table.header.length) {
      throw new DataError({ file: this.table.file, line: this.row.line }, `row has ${this.row.cells.length} fields, header has ${this.table.header.length}`);
    }
    return this.row.cells[idx]!;
  }

  /** A non-empty cell. */
  required(column: string): string {
    const v = this.cell(column).trim();
    if (v === '') throw new DataError({ file: this.table.file, line: this.row.line, field: column }, 'empty value');
    return v;
  }

  /** A finite number ('' allowed only when `allowEmpty`, giving null). */
  number(column: string, allowEmpty = false): number | null {
    const raw = this.cell(column).trim();
    if (raw === '') {
      if (allowEmpty) return null;
      throw new DataError({ file: this.table.file, line: this.row.line, field: column }, 'empty value, expected a number');
    }
    const v = Number(raw);
    if (!Number.isFinite(v)) throw new DataError({ file: this.table.file, line: this.row.line, field: column }, `'${raw}' is not a number`);
    return v;
  }

  error(column: string | undefined, reason: string): DataError {
    return new DataError({ file: this.table.file, line: this.row.line, ...(column === undefined ? {} : { field: column }) }, reason);
  }
}

export function* csvRecords(table: CsvTable): Generator<CsvRecord> {
  for (const row of table.rows) yield new CsvRecord(table, row);
}
