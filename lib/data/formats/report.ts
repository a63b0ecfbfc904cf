// Report generation data as R2Gen distributes IU-Xray and MIMIC-CXR: annotation.json maps each
// split ('train', 'val', 'test') to records {id, report, image_path: [...], split?}.
import { BadRecordPolicy, DataError, type ReadOptions, type ReadResult } from '../errors.ts';
import { JsonFields, arrayMemberRecordLines, describeType, readJsonObject, readText } from '../json-source.ts';
import type { ReportExample } from '../types.ts';

export type ReportSection = 'full' | 'findings' | 'impression' | 'findings+impression';

const HEADER = /(^|\n|\s)(FINDINGS|IMPRESSION|INDICATION|COMPARISON|TECHNIQUE|HISTORY|EXAMINATION|CLINICAL HISTORY|NOTIFICATION)\s*:/gi;

/** The named sections of a free-text report ('FINDINGS: ... IMPRESSION: ...'), keys lower-case. */
export function reportSections(text: string): Map<string, string> {
  const marks: { name: string; start: number; bodyStart: number }[] = [];
  for (const m of text.matchAll(HEADER)) {
    marks.push({ name: m[2]!.toLowerCase(), start: m.index! + m[1]!.length, bodyStart: m.index! + m[0].length });
  }
  const out = new Map<string, string>();
  marks.forEach((mark, i) => {
    const end = i + 1 < marks.length ? marks[i + 1]!.start : text.length;
    out.set(mark.name, text.slice(mark.bodyStart, end).replace(/\s+/g, ' ').trim());
  });
  return out;
}

/**
 * The part of a report a task trains on. Records with separate `findings`/`impression` fields use
 * them; otherwise sections are found by their headers; a report without headers is all findings
 * (R2Gen's annotation.json already holds the findings only).
 */
export function selectReportSection(report: string, section: ReportSection, fields: { findings?: string; impression?: string } = {}): string | null {
  if (section === 'full') return report.trim();
  const sections = reportSections(report);
  const hasHeaders = sections.size > 0;
  const findings = fields.findings ?? (hasHeaders ? sections.get('findings') : report.trim());
  const impression = fields.impression ?? sections.get('impression');
  const pick = section === 'findings' ? findings : section === 'impression' ? impression : [findings, impression].filter((s) => s).join(' ');
  return pick && pick.trim() !== '' ? pick.trim() : null;
}

export interface ReportReadOptions extends ReadOptions {
  /** Which split of annotation.json ('train', 'val', 'test'); all splits when absent. */
  split?: string;
  section?: ReportSection;
}

export function readReportAnnotations(file: string, opts: ReportReadOptions = {}): ReadResult<ReportExample> {
  const text = readText(file);
  const { members } = readJsonObject(file, text);
  const lines = arrayMemberRecordLines(text);
  const policy = new BadRecordPolicy(opts.skipBad);
  const examples: ReportExample[] = [];
  const splits = members.map((m) => m.key!);
  if (opts.split !== undefined && !splits.includes(opts.split)) {
    throw new DataError({ file }, `no split '${opts.split}' (the file has: ${splits.join(', ')})`);
  }
  for (const member of members) {
    if (opts.split !== undefined && member.key !== opts.split) continue;
    if (!Array.isArray(member.value)) throw new DataError({ file, line: member.line, field: member.key! }, `expected an array of records, found ${describeType(member.value)}`);
    const starts = lines.get(member.key!) ?? [];
    const records = member.value.map((value, index) => ({ value, index, line: starts[index] ?? member.line }));
    for (const record of records) {
      const ex = policy.guard(() => {
        const f = new JsonFields(file, record);
        const id = f.id('id');
        const paths = f.array('image_path');
        if (paths.length === 0) throw f.error('image_path', 'empty list of images');
        const images = paths.map((p, i) => {
          if (typeof p !== 'string' || p === '') throw f.error(`image_path[${i}]`, 'expected a file name');
          return p;
        });
        const report = f.string('report');
        const text = selectReportSection(report, opts.section ?? 'full', {
          ...(f.has('findings') ? { findings: f.string('findings') } : {}),
          ...(f.has('impression') ? { impression: f.string('impression') } : {}),
        });
        if (text === null) throw f.error('report', `no ${opts.section} section`);
        return { id, split: member.key!, images, report: text, source: { file, line: record.line } };
      });
      if (ex) examples.push(ex);
    }
  }
  return { file, examples, skipped: policy.skipped };
}

