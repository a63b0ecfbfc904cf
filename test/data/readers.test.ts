// Dataset readers on small files in each public layout, written by the test, including
// malformed ones: errors name file, line and field; --skip-bad counts and reports instead.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readConversations, questionAndAnswer } from '../../lib/data/formats/conversation.ts';
import { readPathVqa, readSlake, readVqaRad } from '../../lib/data/formats/vqa.ts';
import { readReportAnnotations, selectReportSection } from '../../lib/data/formats/report.ts';
import {
  NIH_LABELS, applySplitList, fractionSubset, readCheXpert, readLabelCsv, readNihChestXray14, readRsnaPneumonia,
} from '../../lib/data/formats/classification.ts';
import { detectFormat, readDataset } from '../../lib/data/detect.ts';
import { DataError } from '../../lib/data/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'medtune-readers-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
function rejectsAt(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DataError, `expected a DataError, got ${e}`);
    assert.match((e as Error).message, pattern);
    return true;
  });
}

describe('LLaVA / LLaVA-Med conversation JSON and JSONL', () => {
  const records = [
    { id: 'q1', image: 'synpic1.jpg', conversations: [{ from: 'human', value: '<image>\nIs this a CT?' }, { from: 'gpt', value: 'Yes' }], answer_type: 'CLOSED' },
    { id: 'q2', image: 'synpic2.jpg', conversations: [
      { from: 'human', value: '<image>\nWhat organ?' }, { from: 'gpt', value: 'Liver' },
      { from: 'human', value: 'Any lesion?' }, { from: 'gpt', value: 'A cyst.' }], answer_type: 'OPEN' },
  ];
  it('reads a JSON array with the line of each record, multi-turn included', () => {
    const f = file('conv.json', JSON.stringify(records, null, 2));
    const { examples, skipped } = readConversations(f);
    assert.equal(examples.length, 2);
    assert.equal(skipped.length, 0);
    assert.equal(examples[1]!.conversations.length, 4);
    assert.equal(examples[0]!.answerType, 'CLOSED');
    assert.equal(examples[0]!.source.line, 2);
    assert.ok(examples[1]!.source.line > 2);
    assert.deepEqual(questionAndAnswer(examples[0]!), { question: 'Is this a CT?', answer: 'Yes' });
  });
  it('reads JSONL', () => {
    const f = file('conv.jsonl', records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    assert.deepEqual(readConversations(f).examples.map((e) => [e.id, e.source.line]), [['q1', 1], ['q2', 2]]);
  });
  it('malformed records name file, line and field; skip-bad counts them', () => {
    const bad = [
      records[0],
      { id: 'q3', image: 'a.jpg', conversations: [{ from: 'human', value: 'hi' }, { from: 'robot', value: 'x' }] },
      { id: 'q4', conversations: [{ from: 'human' }] },
      { id: 'q1', conversations: [{ from: 'human', value: 'dup' }] },
    ];
    const f = file('bad.jsonl', bad.map((r) => JSON.stringify(r)).join('\n'));
    rejectsAt(() => readConversations(f), /bad\.jsonl, line 2, field 'conversations\[1\]\.from': unknown speaker 'robot'/);
    const r = readConversations(f, { skipBad: true });
    assert.equal(r.examples.length, 1);
    assert.deepEqual(r.skipped.map((s) => s.location.line), [2, 3, 4]);
    assert.match(r.skipped[1]!.message, /line 3, field 'conversations\[0\]\.value': missing/);
    assert.match(r.skipped[2]!.message, /duplicate id 'q1' \(first at line 1\)/);
  });
  it('invalid JSON names the line', () => {
    const f = file('broken.json', '[\n{"id": "a",\n "image": }\n]');
    rejectsAt(() => readConversations(f), /broken\.json, line 3: invalid JSON/);
    const g = file('broken.jsonl', '{"id": "a", "conversations": []}\n{oops\n');
    rejectsAt(() => readConversations(g), /broken\.jsonl, line 2: invalid JSON/);
    rejectsAt(() => readConversations(join(dir, 'absent.json')), /absent\.json: file not found/);
  });
});

describe('VQA-RAD, SLAKE, PathVQA', () => {
  it('VQA-RAD public JSON: split by phrase_type, numeric answers, answer types', () => {
    const f = file('VQA_RAD Dataset Public.json', JSON.stringify([
      { qid: 1, image_name: 'synpic54610.jpg', image_organ: 'HEAD', answer: 'Yes', answer_type: 'CLOSED', question_type: 'PRES', question: 'Are regions of the brain infarcted?', phrase_type: 'freeform' },
      { qid: 2, image_name: 'synpic29265.jpg', image_organ: 'CHEST', answer: 2, answer_type: 'OPEN ', question_type: 'COUNT', question: 'How many lesions?', phrase_type: 'test_freeform' },
    ], null, 1));
    const all = readVqaRad(f).examples;
    assert.equal(all.length, 2);
    assert.deepEqual(all[1]!.conversations, [{ from: 'human', value: '<image>\nHow many lesions?' }, { from: 'gpt', value: '2' }]);
    assert.equal(all[1]!.answerType, 'OPEN');
    assert.deepEqual(readVqaRad(f, { split: 'test' }).examples.map((e) => e.id), ['2']);
    assert.equal(detectFormat(f), 'vqa-rad');
    const bad = file('rad-bad.json', JSON.stringify([{ qid: 3, image_name: 'x.jpg', answer: 'no', answer_type: 'MAYBE', question: 'q', phrase_type: 'para' }]));
    rejectsAt(() => readVqaRad(bad), /rad-bad\.json, line 1, field 'answer_type': answer type 'MAYBE' is neither CLOSED nor OPEN/);
  });
  it('SLAKE: English only by default', () => {
    const f = file('slake-test.json', JSON.stringify([
      { img_id: 1, img_name: 'xmlab1/source.jpg', question: 'Which organ is abnormal?', answer: 'Lung', q_lang: 'en', answer_type: 'OPEN', qid: 11, content_type: 'Organ' },
      { img_id: 1, img_name: 'xmlab1/source.jpg', question: '哪个器官不正常?', answer: '肺', q_lang: 'zh', answer_type: 'OPEN', qid: 12 },
    ]));
    assert.deepEqual(readSlake(f).examples.map((e) => e.id), ['11']);
    assert.equal(readSlake(f, { languages: ['en', 'zh'] }).examples.length, 2);
    assert.equal(readSlake(f).examples[0]!.meta?.['content_type'], 'Organ');
  });
  it('PathVQA question/answer CSV and JSONL: yes/no is CLOSED', () => {
    const csv = file('pathvqa.csv', 'image,question,answer\ntest_0001,"Is there fibrosis?",yes\ntest_0002,"What is shown, grossly?",a liver\n');
    const r = readPathVqa(csv, { imageExtension: '.jpg' });
    assert.deepEqual(r.examples.map((e) => [e.id, e.image, e.answerType]), [['0', 'test_0001.jpg', 'CLOSED'], ['1', 'test_0002.jpg', 'OPEN']]);
    assert.equal(r.examples[1]!.conversations[0]!.value, '<image>\nWhat is shown, grossly?');
    const badCsv = file('pathvqa-bad.csv', 'image,question,answer\na,q1,yes\nb,q2,\n');
    rejectsAt(() => readPathVqa(badCsv), /pathvqa-bad\.csv, line 3, field 'answer': empty value/);
    assert.equal(readPathVqa(badCsv, { skipBad: true }).skipped.length, 1);
    const jsonl = file('pathvqa.jsonl', '{"image": "train_1", "question": "Is it benign?", "answer": "no"}\n');
    assert.equal(readPathVqa(jsonl).examples[0]!.answerType, 'CLOSED');
  });
});

describe('report generation annotation.json (IU-Xray / MIMIC-CXR)', () => {
  const ann = {
    train: [{ id: 'CXR2384_IM-0942', report: 'The heart size and pulmonary vascularity appear within normal limits.', image_path: ['CXR2384_IM-0942/0.png', 'CXR2384_IM-0942/1.png'], split: 'train' }],
    val: [],
    test: [
      { id: 's1', study_id: 1, subject_id: 9, report: 'FINDINGS: Lungs are clear. No effusion.\nIMPRESSION: No acute process.', image_path: ['p1/s1/a.jpg'], split: 'test' },
      { id: 's2', report: 'Normal chest.', image_path: [], split: 'test' },
    ],
  };
  it('reads a split with image lists and lines; selects sections', () => {
    const f = file('annotation.json', JSON.stringify(ann, null, 2));
    const train = readReportAnnotations(f, { split: 'train' }).examples;
    assert.deepEqual(train[0]!.images, ['CXR2384_IM-0942/0.png', 'CXR2384_IM-0942/1.png']);
    rejectsAt(() => readReportAnnotations(f, { split: 'test' }), /annotation\.json, line \d+, field 'image_path': empty list of images/);
    const r = readReportAnnotations(f, { split: 'test', section: 'impression', skipBad: true });
    assert.deepEqual(r.examples.map((e) => e.report), ['No acute process.']);
    assert.equal(r.skipped.length, 1);
    assert.equal(readReportAnnotations(f, { split: 'test', section: 'findings', skipBad: true }).examples[0]!.report, 'Lungs are clear. No effusion.');
    rejectsAt(() => readReportAnnotations(f, { split: 'dev' }), /no split 'dev' \(the file has: train, val, test\)/);
    assert.equal(detectFormat(f), 'report');
    // Line numbers point at the record in the file.
    const lines = JSON.stringify(ann, null, 2).split('\n');
    const s1Line = lines.findIndex((l) => l.includes('"id": "s1"'));
    assert.equal(r.examples[0]!.source.line, s1Line);
  });
  it('section selection by hand', () => {
    assert.equal(selectReportSection('No headers here.', 'findings'), 'No headers here.');
    assert.equal(selectReportSection('FINDINGS: A. IMPRESSION: B.', 'findings+impression'), 'A. B.');
    assert.equal(selectReportSection('FINDINGS: A.', 'impression'), null);
  });
});

describe('chest X-ray classification lists', () => {
  it('NIH Data_Entry_2017.csv: 14 labels in order, No Finding is all zeros, split lists', () => {
    const f = file('Data_Entry_2017.csv', [
      'Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],',
      '00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.143,0.143,',
      '00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143,',
      '00000002_000.png,No Finding,0,2,81,M,PA,2500,2048,0.171,0.171,',
      '00000003_000.png,Hernia|Pleural_Thickening,0,3,81,F,PA,2582,2991,0.143,0.143,',
    ].join('\n'));
    const r = readNihChestXray14(f);
    assert.equal(r.labelNames.length, 14);
    assert.equal(r.labelNames[0], 'Atelectasis');
    const row = (names: string[]) => NIH_LABELS.map((l) => (names.includes(l) ? 1 : 0));
    assert.deepEqual(r.examples.map((e) => e.labels), [row(['Cardiomegaly']), row(['Cardiomegaly', 'Emphysema']), row([]), row(['Hernia', 'Pleural_Thickening'])]);
    const list = file('test_list.txt', '00000003_000.png\n00000001_000.png\n');
    assert.deepEqual(applySplitList(r.examples, list).map((e) => e.id), ['00000003_000.png', '00000001_000.png']);
    const badList = file('bad_list.txt', '00000001_000.png\n\nmissing.png\n');
    rejectsAt(() => applySplitList(r.examples, badList), /bad_list\.txt, line 3: 'missing\.png' is not in the dataset/);
    const bad = file('nih-bad.csv', 'Image Index,Finding Labels\na.png,Cardiomegaly|Covid\n');
    rejectsAt(() => readNihChestXray14(bad), /nih-bad\.csv, line 2, field 'Finding Labels': unknown label 'Covid'/);
    assert.equal(detectFormat(f), 'nih');
  });
  it('CheXpert: uncertainty policies U-Ones, U-Zeros, ignore; blanks are negative', () => {
    const header = 'Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,Fracture,Support Devices';
    const f = file('train.csv', `${header}\nCheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,1.0,,,,,,,,-1.0,,1.0,,,1.0\nCheXpert-v1.0-small/train/patient00002/study2/view1_lateral.jpg,Male,87,Lateral,,,,-1.0,1.0,,0.0,,,,,,,,\n`);
    assert.deepEqual(readCheXpert(f).examples.map((e) => e.labels), [[1, 0, 0, 0, 1], [0, 1, 0, 0, 0]]);
    assert.deepEqual(readCheXpert(f, { uncertain: 'zeros' }).examples.map((e) => e.labels), [[0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]);
    const ignored = readCheXpert(f, { uncertain: 'ignore' }).examples[0]!.labels;
    assert.ok(Number.isNaN(ignored[0]));
    assert.equal(readCheXpert(f, { frontalOnly: true }).examples.length, 1);
    const bad = file('chexpert-bad.csv', `${header}\np.jpg,F,1,Frontal,AP,,,2.0,,,,,,,,,,,\n`);
    rejectsAt(() => readCheXpert(bad), /chexpert-bad\.csv, line 2, field 'Cardiomegaly': label value 2 is not 1, 0, -1 or blank/);
    assert.equal(detectFormat(f), 'chexpert');
  });
  it('RSNA pneumonia: one row per box, image-level label', () => {
    const f = file('stage_2_train_labels.csv', 'patientId,x,y,width,height,Target\n0004cfab,,,,,0\n00436515,264.0,152.0,213.0,379.0,1\n00436515,562.0,152.0,256.0,453.0,1\n');
    const r = readRsnaPneumonia(f);
    assert.deepEqual(r.examples.map((e) => [e.id, e.image, e.labels[0]]), [['0004cfab', '0004cfab.dcm', 0], ['00436515', '00436515.dcm', 1]]);
    const bad = file('rsna-bad.csv', 'patientId,x,y,width,height,Target\nabc,,,,,0\nabc,1,2,3,4,1\n');
    rejectsAt(() => readRsnaPneumonia(bad), /rsna-bad\.csv, line 3, field 'Target': patient 'abc' has Target 0 at line 2 and 1 here/);
  });
  it('plain path,label CSV with quoted fields; bad values named', () => {
    const f = file('labels.csv', 'path,effusion,"nodule, small"\n"imgs/a,1.png",1,0\nimgs/b.png,0,1\n');
    const r = readLabelCsv(f);
    assert.deepEqual(r.labelNames, ['effusion', 'nodule, small']);
    assert.deepEqual(r.examples.map((e) => [e.image, e.labels]), [['imgs/a,1.png', [1, 0]], ['imgs/b.png', [0, 1]]]);
    const bad = file('labels-bad.csv', 'path,a,b\nx.png,1\ny.png,1,0.5\n');
    rejectsAt(() => readLabelCsv(bad), /labels-bad\.csv, line 2: row has 2 fields, header has 3/);
    const r2 = readLabelCsv(bad, { skipBad: true });
    assert.equal(r2.examples.length, 0);
    assert.match(r2.skipped[1]!.message, /line 3, field 'b': label value 0\.5 is not 0 or 1/);
    const unterminated = file('labels-quote.csv', 'path,a\n"x.png,1\n');
    rejectsAt(() => readLabelCsv(unterminated), /labels-quote\.csv, line 2: unterminated quoted field/);
  });
  it('label fractions: deterministic, in file order', () => {
    const items = Array.from({ length: 1000 }, (_, i) => i);
    const a = fractionSubset(items, 0.01, 1);
    assert.equal(a.length, 10);
    assert.deepEqual(a, fractionSubset(items, 0.01, 1));
    assert.notDeepEqual(a, fractionSubset(items, 0.01, 2));
    assert.ok(a.every((v, i) => i === 0 || v > a[i - 1]!));
  });
  it('readDataset detects the format and applies a split list', () => {
    const f = file('Data_Entry_2017_small.csv', 'Image Index,Finding Labels\na.png,Mass\nb.png,No Finding\n');
    const list = file('train_1.txt', 'b.png\n');
    const d = readDataset(f, { splitList: list });
    assert.equal(d.task, 'classify');
    assert.deepEqual(d.result.examples.map((e) => e.id), ['b.png']);
  });
});
