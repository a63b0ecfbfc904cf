// loss.png: both sides' loss curves, drawn by Vega-Lite (compiled to a Vega view rendered to SVG
// headless, no canvas) and rasterised by sharp.
import sharp from 'sharp';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { CompareReport } from './report.ts';

/** The Vega-Lite spec: loss per step, one line per side (PyTorch dashed, so equal curves stay visible). */
export function lossChartSpec(r: CompareReport): vl.TopLevelSpec {
  const values = r.steps.flatMap((s) => [
    { step: s.step, loss: s.medtune.loss, side: 'medtune' },
    { step: s.step, loss: s.pytorch.loss, side: 'PyTorch' },
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'training loss: medtune vs PyTorch',
      subtitle: `max difference ${r.loss.max_abs_diff.toExponential(2)} absolute, ${r.loss.max_rel_diff.toExponential(2)} relative`,
    },
    width: 560,
    height: 300,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: true, strokeWidth: 2 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'optimizer step', axis: { tickMinStep: 1, format: 'd' } },
      y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { zero: false } },
      color: { field: 'side', type: 'nominal', title: null, legend: { symbolType: 'stroke', symbolStrokeWidth: 3 }, scale: { domain: ['medtune', 'PyTorch'], range: ['#1f77b4', '#ff7f0e'] } },
      strokeDash: { field: 'side', type: 'nominal', title: null, scale: { domain: ['medtune', 'PyTorch'], range: [[1, 0], [6, 4]] } },
    },
  };
}

export async function renderSvg(spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The loss chart as PNG bytes (2x density, for legible text). */
export async function lossChartPng(r: CompareReport): Promise<Buffer> {
  const svg = await renderSvg(lossChartSpec(r));
  return sharp(Buffer.from(svg), { density: 144 }).png().toBuffer();
}
