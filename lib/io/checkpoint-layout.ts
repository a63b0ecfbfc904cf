// Recognises well-known key layouts in a state dict, so a report can say what a checkpoint is
// and the model layer can later turn it into a config.json. Only what the keys and shapes
// prove is recorded (e.g. a timm ViT's width, depth, patch and image size); the number of
// attention heads is not in the weights and is left to the model layer.

export interface TensorShape {
  name: string;
  shape: number[];
}

export interface DetectedLayout {
  /** timm-vit | hf-vit | blip | hf-blip | llama | unknown families are not reported. */
  name: string;
  /** Facts read off the keys and shapes. */
  facts: Record<string, number | boolean | string>;
  /** Keys that are not part of the recognised model (e.g. an MAE decoder). */
  extraKeys: number;
}

function countIndexed(names: string[], re: RegExp): number {
  const seen = new Set<string>();
  for (const n of names) {
    const m = re.exec(n);
    if (m) seen.add(m[1]!);
  }
  return seen.size;
}

function timmVit(byName: Map<string, number[]>, names: string[], prefix: string): DetectedLayout | null {
  const patch = byName.get(`${prefix}patch_embed.proj.weight`);
  if (!patch || patch.length !== 4 || !byName.has(`${prefix}blocks.0.attn.qkv.weight`)) return null;
  const [embedDim, inChans, patchH, patchW] = patch as [number, number, number, number];
  const facts: Record<string, number | boolean | string> = {
    embedDim, inChans, patchSize: patchH === patchW ? patchH : `${patchH}x${patchW}`,
    depth: countIndexed(names, new RegExp(`^${prefix.replace(/\./g, '\\.')}blocks\\.(\\d+)\\.`)),
    qkvBias: byName.has(`${prefix}blocks.0.attn.qkv.bias`),
    clsToken: byName.has(`${prefix}cls_token`),
  };
  const fc1 = byName.get(`${prefix}blocks.0.mlp.fc1.weight`);
  if (fc1) facts['mlpHidden'] = fc1[0]!;
  const pos = byName.get(`${prefix}pos_embed`);
  if (pos && pos.length === 3) {
    const prefixTokens = facts['clsToken'] ? 1 : 0;
    const grid = Math.sqrt(pos[1]! - prefixTokens);
    if (Number.isInteger(grid) && patchH === patchW) facts['imageSize'] = grid * patchH;
  }
  const head = byName.get(`${prefix}head.weight`);
  if (head) facts['numClasses'] = head[0]!;
  facts['globalPool'] = byName.has(`${prefix}fc_norm.weight`) ? 'avg (fc_norm)' : 'token';
  const decoder = names.filter((n) => /^(decoder_|mask_token$)/.test(n.slice(prefix.length)));
  if (decoder.length) facts['maeDecoder'] = true;
  const extra = names.filter((n) => !n.startsWith(prefix)).length + decoder.length;
  return { name: 'timm-vit', facts, extraKeys: extra };
}

/** The recognised layout of a state dict, or null. */
export function detectLayout(tensors: TensorShape[]): DetectedLayout | null {
  const byName = new Map(tensors.map((t) => [t.name, t.shape]));
  const names = tensors.map((t) => t.name);
  for (const prefix of ['', 'encoder.', 'backbone.', 'visual.', 'model.']) {
    const vit = timmVit(byName, names, prefix);
    if (vit) {
      if (prefix) vit.facts['keyPrefix'] = prefix;
      return vit;
    }
  }
  const has = (re: RegExp) => names.some((n) => re.test(n));
  const simple = (name: string, facts: Record<string, number | boolean | string> = {}): DetectedLayout => ({ name, facts, extraKeys: 0 });
  if (has(/^visual_encoder\.patch_embed\./) && has(/^text_encoder\./))
    return simple('blip', { textDecoder: has(/^text_decoder\./), layers: countIndexed(names, /^visual_encoder\.blocks\.(\d+)\./) });
  if (has(/^vision_model\.embeddings\.patch_embedding\./) && has(/^text_(encoder|decoder)\./)) return simple('hf-blip');
  if (has(/(^|\.)embeddings\.patch_embeddings\.projection\.weight$/))
    return simple('hf-vit', { layers: countIndexed(names, /encoder\.layer\.(\d+)\./) });
  if (has(/(^|\.)layers\.\d+\.self_attn\.q_proj\.weight$/) && has(/(^|\.)layers\.\d+\.mlp\.gate_proj\.weight$/))
    return simple('llama', { layers: countIndexed(names, /layers\.(\d+)\.self_attn/) });
  return null;
}
