// The trainable-parameter report: counts and percentages per model part and per module kind, and
// the line peft's print_trainable_parameters() prints for the same model and method. peft counts
// every parameter of the PeftModel, and a module in modules_to_save is there twice (the frozen
// original and the trained copy), so with adapters its "all params" includes those modules again;
// the peft line follows that rule so the numbers can be compared with PyTorch as printed.
import type { Model, ParameterInfo } from '../models/model.ts';

export interface ReportGroup {
  group: string;
  trainable: number;
  total: number;
}

export interface TrainableReport {
  trainable: number;
  /** Every parameter element of the model (adapters included). */
  total: number;
  /** 100 * trainable / total. */
  percent: number;
  /** Counted as peft counts (see above): what print_trainable_parameters() shows. */
  peft: { trainable: number; total: number; percent: number };
  byPart: ReportGroup[];
  byKind: ReportGroup[];
  /** `trainable params: 1,024 || all params: 13,680 || trainable%: 7.4854` */
  peftLine: string;
  /** A table by part and kind, then the peft line. */
  text: string;
}

const fmt = (n: number) => n.toLocaleString('en-US');

export function peftLine(trainable: number, total: number): string {
  return `trainable params: ${fmt(trainable)} || all params: ${fmt(total)} || trainable%: ${(total ? (100 * trainable) / total : 0).toFixed(4)}`;
}

function groupBy(params: readonly ParameterInfo[], key: (p: ParameterInfo) => string): ReportGroup[] {
  const groups = new Map<string, ReportGroup>();
  for (const p of params) {
    const k = key(p);
    const g = groups.get(k) ?? { group: k, trainable: 0, total: 0 };
    g.total += p.numel;
    if (p.requiresGrad) g.trainable += p.numel;
    groups.set(k, g);
  }
  return [...groups.values()];
}

function table(title: string, groups: readonly ReportGroup[], total: number): string[] {
  const rows = groups.map((g) => [g.group, fmt(g.trainable), fmt(g.total), g.total ? ((100 * g.trainable) / g.total).toFixed(4) : '-', ((100 * g.trainable) / total).toFixed(4)]);
  const head = [title, 'trainable', 'total', '% of group', '% of model'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}`;
  return [line(head), ...rows.map(line)];
}

/**
 * Counts the model's trainable parameters (requires_grad) per part and kind. `modulesToSave`
 * (from applyMethod) makes the peft line count those modules twice, as peft does.
 */
export function trainableReport(model: Model, applied?: { adapters: readonly unknown[]; modulesToSave: readonly string[] } | null): TrainableReport {
  const params = model.parameters();
  let trainable = 0;
  let total = 0;
  for (const p of params) {
    total += p.numel;
    if (p.requiresGrad) trainable += p.numel;
  }
  let duplicated = 0;
  if (applied && applied.adapters.length > 0) {
    for (const p of params) if (p.persistent && applied.modulesToSave.some((m) => p.name.startsWith(`${m}.`))) duplicated += p.numel;
  }
  const peft = { trainable, total: total + duplicated, percent: total + duplicated ? (100 * trainable) / (total + duplicated) : 0 };
  const byPart = groupBy(params, (p) => (p.persistent ? p.part : `${p.part} (adapters)`));
  const byKind = groupBy(params, (p) => p.kind);
  const line = peftLine(peft.trainable, peft.total);
  const text = [...table('part', byPart, total), ...table('kind', byKind.filter((g) => g.total > 0), total), line].join('\n');
  return { trainable, total, percent: total ? (100 * trainable) / total : 0, peft, byPart, byKind, peftLine: line, text };
}
