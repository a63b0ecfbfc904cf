// Reads the dynamic section of an ELF64 little-endian shared object (x86-64, aarch64 Linux):
// DT_NEEDED, DT_SONAME, DT_RPATH and DT_RUNPATH, with the file offset of each string, and the
// symbol versions it needs from each library (GLIBC_2.32, GLIBCXX_3.4.30 ...). Used to
// check what a prebuilt addon links (libtorch_cuda must be NEEDED) and that it carries no path
// of the build machine, and to follow a CUDA libtorch's library closure when unpacking wheels.
// No readelf needed, so the checks also run where binutils are absent.
import { closeSync, openSync, readSync, fstatSync } from 'node:fs';

const DT = { NULL: 0, NEEDED: 1, STRTAB: 5, SONAME: 14, RPATH: 15, RUNPATH: 29 };
const SHT_DYNAMIC = 6;
const SHT_GNU_VERNEED = 0x6ffffffe;

function readAt(fd, position, length) {
  const buf = Buffer.alloc(length);
  const n = readSync(fd, buf, 0, length, position);
  if (n !== length) throw new Error(`truncated ELF file (wanted ${length} bytes at ${position})`);
  return buf;
}

/**
 * @typedef {{ value: string, offset: number }} DynString
 * @typedef {{ needed: string[], soname: string | null, rpath: string | null, runpath: string | null,
 *   versions: Record<string, string[]>,
 *   strings: { needed: DynString[], soname: DynString | null, rpath: DynString | null, runpath: DynString | null } }} ElfDynamic
 */

/**
 * @param {string} file
 * @returns {ElfDynamic}
 */
export function readElfDynamic(file) {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const ident = readAt(fd, 0, 64);
    if (ident.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`);
    if (ident[4] !== 2 || ident[5] !== 1) throw new Error(`${file}: only 64-bit little-endian ELF is supported`);
    const shoff = Number(ident.readBigUInt64LE(0x28));
    const shentsize = ident.readUInt16LE(0x3a);
    const shnum = ident.readUInt16LE(0x3c);
    if (shoff === 0 || shoff + shnum * shentsize > size) throw new Error(`${file}: no section headers`);
    const sections = readAt(fd, shoff, shnum * shentsize);
    const section = (i) => {
      const b = i * shentsize;
      return { type: sections.readUInt32LE(b + 4), offset: Number(sections.readBigUInt64LE(b + 0x18)), size: Number(sections.readBigUInt64LE(b + 0x20)), link: sections.readUInt32LE(b + 0x28) };
    };
    let dyn = null;
    let verneed = null;
    for (let i = 0; i < shnum; i++) {
      if (section(i).type === SHT_DYNAMIC) dyn = section(i);
      else if (section(i).type === SHT_GNU_VERNEED) verneed = section(i);
    }
    const empty = { needed: [], soname: null, rpath: null, runpath: null, versions: {}, strings: { needed: [], soname: null, rpath: null, runpath: null } };
    if (!dyn) return empty;
    const strtab = section(dyn.link);
    const str = (off) => {
      const chunk = readAt(fd, strtab.offset + off, Math.min(4096, strtab.size - off));
      const end = chunk.indexOf(0);
      return { value: chunk.toString('utf8', 0, end < 0 ? chunk.length : end), offset: strtab.offset + off };
    };
    const body = readAt(fd, dyn.offset, dyn.size);
    const out = empty;
    for (let p = 0; p + 16 <= body.length; p += 16) {
      const tag = Number(body.readBigInt64LE(p));
      const val = Number(body.readBigUInt64LE(p + 8));
      if (tag === DT.NULL) break;
      if (tag === DT.NEEDED) out.strings.needed.push(str(val));
      else if (tag === DT.SONAME) out.strings.soname = str(val);
      else if (tag === DT.RPATH) out.strings.rpath = str(val);
      else if (tag === DT.RUNPATH) out.strings.runpath = str(val);
    }
    // Elf64_Verneed { u16 version, u16 cnt, u32 file, u32 aux, u32 next } followed by
    // Elf64_Vernaux { u32 hash, u16 flags, u16 other, u32 name, u32 next } entries.
    if (verneed) {
      const vstr = section(verneed.link);
      const vs = (off) => {
        const chunk = readAt(fd, vstr.offset + off, Math.min(256, vstr.size - off));
        return chunk.toString('utf8', 0, Math.max(0, chunk.indexOf(0)));
      };
      const v = readAt(fd, verneed.offset, verneed.size);
      for (let p = 0, guard = 0; p + 16 <= v.length && guard < 1000; guard++) {
        const cnt = v.readUInt16LE(p + 2);
        const file = vs(v.readUInt32LE(p + 4));
        const names = (out.versions[file] ??= []);
        for (let a = p + v.readUInt32LE(p + 8), k = 0; k < cnt && a + 16 <= v.length; k++) {
          names.push(vs(v.readUInt32LE(a + 8)));
          const next = v.readUInt32LE(a + 12);
          if (!next) break;
          a += next;
        }
        const next = v.readUInt32LE(p + 12);
        if (!next) break;
        p += next;
      }
    }
    out.needed = out.strings.needed.map((s) => s.value);
    out.soname = out.strings.soname?.value ?? null;
    out.rpath = out.strings.rpath?.value ?? null;
    out.runpath = out.strings.runpath?.value ?? null;
    return out;
  } finally {
    closeSync(fd);
  }
}

/**
 * The newest version of each versioned library a binary needs: { 'libc.so.6': 'GLIBC_2.32',
 * 'libstdc++.so.6': 'GLIBCXX_3.4.30' }, the system it can load on (glibc, libstdc++ at least).
 * @param {ElfDynamic} dyn
 * @returns {Record<string, string>}
 */
export function newestVersions(dyn) {
  const num = (s) => (s.match(/[\d.]+$/)?.[0] ?? '0').split('.').map(Number);
  const cmp = (a, b) => { const x = num(a), y = num(b); for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0); return 0; };
  /** @type {Record<string, string>} */
  const out = {};
  for (const [file, names] of Object.entries(dyn.versions)) {
    // Only the main series (GLIBC_, GLIBCXX_, CXXABI_ share a file: keep the newest of each).
    /** @type {Record<string, string>} */
    const series = {};
    for (const n of names) { const key = n.replace(/[\d.]+$/, ''); if (!series[key] || cmp(n, series[key]) > 0) series[key] = n; }
    out[file] = Object.values(series).sort().join(' ');
  }
  return out;
}
