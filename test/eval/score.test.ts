// LLaVA-Med's VQA scoring worked by hand, and `medtune score` end to end on dataset files in
// their public layouts with prediction files keyed by the datasets' own ids.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exactMatch, normalizeAnswer, scoreReports, scoreVqa, tokenF1, binaryAuroc } from '../../lib/eval/index.ts';
import { REPO_ROOT } from '../helpers/fixtures.ts';

describe('LLaVA-Med VQA scoring (by hand)', () => {
  it('normalizes like LLaVA-Med: punctuation, number words, articles, contractions, periods', () => {
    assert.equal(normalizeAnswer('The Left Lung.'), 'left lung');
    assert.equal(normalizeAnswer('two lesions, (small)'), '2 lesions small');
    assert.equal(normalizeAnswer('3.5 cm'), '3.5 cm');
    assert.equal(normalizeAnswer('isnt it'), "isn't it");
    assert.equal(normalizeAnswer('x-ray'), 'x ray');
  });
  it('token recall / F1 / exact match follow calculate_f1score and calculate_exactmatch', () => {
    // prediction words {left, lung, base} vs answer {left, lower, lobe}: tp 1, fp 2, fn 2
    assert.deepEqual(tokenF1('left lung base', 'left lower lobe'), { f1: 1 / 3, precision: 1 / 3, recall: 1 / 3 });
    assert.equal(exactMatch('the left lung', 'left lung'), 1);
    assert.equal(exactMatch('left lung apex', 'lung'), 1 / 3);
  });
  it('closed accuracy, LLaVA-Med\'s printed variant, open recall, per type', () => {
    const s = scoreVqa([
      { id: '1', answerType: 'CLOSED', answer: 'yes', prediction: 'Yes, there is.' },
      { id: '2', answerType: 'CLOSED', answer: 'no', prediction: 'Yes.' },         // says yes/no, wrong: LLaVA-Med drops it
      { id: '3', answerType: 'CLOSED', answer: 'no', prediction: 'Unclear' },      // no yes/no: a miss in both
      { id: '4', answerType: 'OPEN', answer: 'left lower lobe', prediction: 'the left lower lobe' },
      { id: '5', answerType: 'OPEN', answer: 'liver', prediction: 'spleen' },
    ]);
    assert.equal(s.closedAccuracy, 1 / 3);
    assert.equal(s.closedAccuracyLlavaMed, 1 / 2);
    assert.equal(s.openRecall, 0.5);
    assert.equal(s.openSubstringAccuracy, 0.5);
    assert.equal(s.overall, (1 + 0 + 0 + 1 + 0) / 5);
    assert.deepEqual(s.count, { closed: 3, open: 2, total: 5 });
    // LLaVA-Med matches substrings: 'cannot' contains 'no', so it counts as a correct 'no'.
    assert.equal(scoreVqa([{ id: '1', answerType: 'CLOSED', answer: 'no', prediction: 'I cannot tell' }]).closedAccuracy, 1);
  });
});

describe('medtune score', () => {
  const dir = mkdtempSync(join(tmpdir(), 'medtune-score-'));
  const cli = (args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, 'bin/medtune.js'), 'score', ...args], { encoding: 'utf8' });
  const write = (name: string, text: string) => { writeFileSync(join(dir, name), text); return join(dir, name); };

  it('vqa: conversation JSON reference, {id, prediction} JSONL (and LLaVA answer files)', () => {
    const ref = write('test.json', JSON.stringify([
      { id: 'a', image: 'x.jpg', conversations: [{ from: 'human', value: '<image>\nIs there a mass?' }, { from: 'gpt', value: 'yes' }], answer_type: 'CLOSED' },
      { id: 'b', image: 'y.jpg', conversations: [{ from: 'human', value: '<image>\nWhere?' }, { from: 'gpt', value: 'left lower lobe' }], answer_type: 'OPEN' },
    ]));
    const pred = write('pred.jsonl', '{"id": "a", "prediction": "Yes"}\n{"id": "b", "prediction": "left lung"}\n');
    const out = cli(['--pred', pred, '--ref', ref, '--json']);
    assert.equal(out.status, 0, out.stderr);
    const j = JSON.parse(out.stdout);
    assert.equal(j.task, 'vqa');
    assert.equal(j.closedAccuracy, 1);
    assert.equal(j.openRecall, 1 / 3);
    const llava = write('answers.jsonl', '{"question_id": "a", "text": "no"}\n{"question_id": "b", "text": "left lower lobe"}\n');
    assert.equal(JSON.parse(cli(['--pred', llava, '--ref', ref, '--json', '--task', 'vqa']).stdout).openRecall, 1);
    const human = cli(['--pred', pred, '--ref', ref]);
    assert.match(human.stdout, /closed: yes\/no accuracy\s+100\.00/);
  });
  it('classify: NIH CSV reference with a split list, per-label AUROC with single-class labels reported', () => {
    const ref = write('Data_Entry_2017.csv', 'Image Index,Finding Labels\na.png,Mass\nb.png,No Finding\nc.png,Mass|Nodule\nd.png,Effusion\n');
    const list = write('test_list.txt', 'a.png\nb.png\nc.png\n');
    const scores = (mass: number) => Array.from({ length: 14 }, (_, i) => (i === 4 ? mass : 0.1));
    const pred = write('scores.jsonl', [['a.png', 0.9], ['b.png', 0.2], ['c.png', 0.4], ['d.png', 0.3]].map(([id, m]) => JSON.stringify({ id, scores: scores(m as number) })).join('\n'));
    const all = JSON.parse(execFileSync(process.execPath, [join(REPO_ROOT, 'bin/medtune.js'), 'score', '--pred', pred, '--ref', ref, '--json'], { encoding: 'utf8' }));
    const mass = all.auroc.perLabel.find((p: { label: string }) => p.label === 'Mass');
    assert.equal(mass.auroc, binaryAuroc([1, 0, 1, 0], [0.9, 0.2, 0.4, 0.3]).auroc);
    assert.ok(all.auroc.undefinedLabels.includes('Atelectasis'));
    // With the split list the reference is a.png..c.png, so d.png's prediction is an unknown id.
    const out = cli(['--pred', pred, '--ref', ref, '--split-list', list]);
    assert.equal(out.status, 1);
    assert.match(out.stderr, /scores\.jsonl: 1 predictions have ids not in .*Data_Entry_2017\.csv \(first: 'd\.png'\)/);
  });
  it('report: annotation.json test split', () => {
    const ref = write('annotation.json', JSON.stringify({ train: [], val: [], test: [
      { id: 'r1', report: 'the heart is normal in size . the lungs are clear .', image_path: ['r1/0.png'], split: 'test' },
      { id: 'r2', report: 'no pleural effusion or pneumothorax .', image_path: ['r2/0.png'], split: 'test' },
    ] }));
    const hyps = ['the heart is normal . lungs are clear .', 'no effusion or pneumothorax .'];
    const pred = write('reports.jsonl', hyps.map((h, i) => JSON.stringify({ id: `r${i + 1}`, prediction: h })).join('\n'));
    const out = cli(['--pred', pred, '--ref', ref, '--split', 'test', '--json']);
    assert.equal(out.status, 0, out.stderr);
    const j = JSON.parse(out.stdout);
    const expected = scoreReports(hyps, ['the heart is normal in size . the lungs are clear .', 'no pleural effusion or pneumothorax .']);
    assert.deepEqual({ bleu: j.bleu, cocoBleu: j.cocoBleu, rougeL: j.rougeL, ciderD: j.ciderD }, { bleu: expected.bleu, cocoBleu: expected.cocoBleu, rougeL: expected.rougeL, ciderD: expected.ciderD });
  });
  it('bad flags and missing predictions are one clear line', () => {
    const r = cli(['--pred', 'x']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /medtune score: --ref FILE is required/);
    const ref = write('one.json', JSON.stringify([{ id: 'a', conversations: [{ from: 'human', value: 'q' }, { from: 'gpt', value: 'yes' }], answer_type: 'CLOSED' }]));
    const empty = write('empty.jsonl', '');
    const m = cli(['--pred', empty, '--ref', ref]);
    assert.equal(m.status, 1);
    assert.match(m.stderr, /empty\.jsonl: no prediction for 1 of 1 reference ids .*\(first: 'a'\)/);
  });
});
