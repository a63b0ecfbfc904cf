// Shard sizes as transformers' save_pretrained(max_shard_size=...) takes them.

/** Bytes from a number or a size string as transformers' max_shard_size takes it ('5GB', '500MB', '2GiB'). */
export function parseByteSize(size: number | string): number {
  if (typeof size === 'number') {
    if (!Number.isFinite(size) || size <= 0) throw new TypeError(`size must be a positive number of bytes, got ${size}`);
    return Math.floor(size);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?\s*$/i.exec(size);
  if (!m) throw new TypeError(`size '${size}' is not a byte count like '5GB', '500MB' or '2GiB'`);
  const unit = (m[2] ?? 'B').toUpperCase();
  const factor: Record<string, number> = {
    B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40,
  };
  return Math.floor(Number(m[1]) * factor[unit]!);
}
