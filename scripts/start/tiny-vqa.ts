// The bundled medical-VQA-style set of `npm start`, generated deterministically: 64 synthetic grey
// frontal "chest X-rays" (two dark lung fields on a soft-tissue background, noise) of which a
// third carry a bright opacity in the left lung, a third in the right and a third none, written as
// PNGs with sharp, and a VQA-RAD-style JSON (qid, image_name, question, answer, answer_type,
// phrase_type) with closed yes/no and open questions about them. Radiological convention: the
// patient's left lung is on the image's right.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

export const VQA_IMAGES = 64;
const SIZE = 64;

export type Side = 'left' | 'right' | 'none';

export interface VqaRecord {
  qid: number;
  image_name: string;
  question: string;
  answer: string;
  answer_type: 'CLOSED' | 'OPEN';
  question_type: string;
  phrase_type: string;
  image_organ: string;
}

/** mulberry32: a small seeded generator, the same numbers on every platform. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One grey image: lungs as darker ellipses, an opacity as a bright Gaussian blob inside one of them. */
function xray(side: Side, rand: () => number): Uint8Array {
  const px = new Uint8Array(SIZE * SIZE);
  const jitter = () => (rand() - 0.5) * 6;
  const lungs = [{ cx: 20 + jitter(), cy: 32 + jitter() }, { cx: 44 + jitter(), cy: 32 + jitter() }];
  // The blob sits in the image's right lung for the patient's left.
  const lung = side === 'left' ? lungs[1]! : lungs[0]!;
  const blob = { cx: lung.cx + jitter(), cy: lung.cy + jitter() - 4, r: 5 + rand() * 3 };
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      let v = 150;
      for (const l of lungs) if (((x - l.cx) / 11) ** 2 + ((y - l.cy) / 20) ** 2 < 1) v = 60;
      if (side !== 'none') v += 150 * Math.exp(-((x - blob.cx) ** 2 + (y - blob.cy) ** 2) / (2 * blob.r ** 2));
      v += (rand() - 0.5) * 30;
      px[y * SIZE + x] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return px;
}

function questions(side: Side): [string, string, 'CLOSED' | 'OPEN', string][] {
  return [
    ['Is there an opacity in the lungs?', side === 'none' ? 'no' : 'yes', 'CLOSED', 'PRES'],
    ['Which side is the opacity on?', side, 'OPEN', 'POS'],
    ['Is the left lung clear?', side === 'left' ? 'no' : 'yes', 'CLOSED', 'POS'],
  ];
}

/** Writes DIR/images/*.png and DIR/vqa.json (skipping nothing that exists is not worth it: it is fast). */
export async function writeTinyVqaSet(dir: string): Promise<{ file: string; images: string; records: VqaRecord[] }> {
  const images = join(dir, 'images');
  mkdirSync(images, { recursive: true });
  const rand = rng(2024);
  const records: VqaRecord[] = [];
  for (let i = 0; i < VQA_IMAGES; i++) {
    const side: Side = (['none', 'left', 'right'] as const)[i % 3]!;
    const name = `cxr_${String(i).padStart(3, '0')}.png`;
    await sharp(xray(side, rand), { raw: { width: SIZE, height: SIZE, channels: 1 } }).toColourspace('b-w').png().toFile(join(images, name));
    for (const [question, answer, type, qtype] of questions(side)) {
      records.push({
        qid: records.length, image_name: name, question, answer, answer_type: type, question_type: qtype,
        // VQA-RAD's split marker: every eighth image's questions are the test set.
        phrase_type: i % 8 === 7 ? 'test_freeform' : 'freeform', image_organ: 'CHEST',
      });
    }
  }
  const file = join(dir, 'vqa.json');
  writeFileSync(file, `${JSON.stringify(records, null, 1)}\n`);
  return { file, images, records };
}
