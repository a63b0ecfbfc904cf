// The install-time pieces: ZIP extraction (used to unpack the torch wheel) and libtorch discovery.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { deflateRawSync, crc32 } from 'node:zlib';
import { extractZip, listZip } from '../../lib/io/zip.mjs';
import { describeLibtorch, locateLibtorch } from '../../scripts/setup/libtorch.mjs';
import { REPO_ROOT } from '../helpers/fixtures.ts';

/** Writes a ZIP with the given entries (deflated or stored) the way zip tools lay them out. */
function writeZip(file: string, entries: { name: string; data: Buffer; deflate: boolean }[]): void {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const body = e.deflate ? deflateRawSync(e.data) : e.data;
    const name = Buffer.from(e.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(e.deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc32(e.data), 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(e.deflate ? 8 : 0, 10);
    cd.writeUInt32LE(crc32(e.data), 16);
    cd.writeUInt32LE(body.length, 20);
    cd.writeUInt32LE(e.data.length, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE((0o100644 << 16) >>> 0, 38);
    cd.writeUInt32LE(offset, 42);
    parts.push(local, name, body);
    central.push(cd, name);
    offset += 30 + name.length + body.length;
  }
  const cdBuf = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBuf.length, 12);
  end.writeUInt32LE(offset, 16);
  writeFileSync(file, Buffer.concat([...parts, cdBuf, end]));
}

describe('zip extraction', () => {
  it('extracts stored and deflated entries with a filter', () => {
    const dir = mkdtempSync(join(tmpdir(), 'medtune-zip-'));
    const zip = join(dir, 'a.zip');
    const big = Buffer.alloc(100_000, 'libtorch ');
    writeZip(zip, [
      { name: 'torch/include/a.h', data: Buffer.from('#pragma once\n'), deflate: false },
      { name: 'torch/lib/libx.so', data: big, deflate: true },
      { name: 'torch/_dynamo/skip.py', data: Buffer.from('x'), deflate: true },
    ]);
    assert.deepEqual(listZip(zip).map((e: { name: string }) => e.name), ['torch/include/a.h', 'torch/lib/libx.so', 'torch/_dynamo/skip.py']);
    const n = extractZip(zip, join(dir, 'out'), (name: string) => /^torch\/(include|lib)\//.test(name));
    assert.equal(n, 2);
    assert.equal(readFileSync(join(dir, 'out/torch/include/a.h'), 'utf8'), '#pragma once\n');
    assert.ok(readFileSync(join(dir, 'out/torch/lib/libx.so')).equals(big));
    assert.equal(existsSync(join(dir, 'out/torch/_dynamo')), false);
  });

  it('refuses paths that escape the destination, and non-zip files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'medtune-zip-'));
    const zip = join(dir, 'evil.zip');
    writeZip(zip, [{ name: '../escape.txt', data: Buffer.from('no'), deflate: false }]);
    assert.throws(() => extractZip(zip, join(dir, 'out')), /unsafe path/);
    writeFileSync(join(dir, 'not.zip'), 'plain text');
    assert.throws(() => listZip(join(dir, 'not.zip')), /not a zip archive/);
  });
});

describe('libtorch discovery', () => {
  it('describes the libtorch this checkout was built against', () => {
    const choice = JSON.parse(readFileSync(join(REPO_ROOT, 'build/libtorch.json'), 'utf8')) as { dir: string; version: string; source: string };
    const info = describeLibtorch(choice.dir);
    assert.equal(info.version, choice.version);
    assert.match(info.version!, /^\d+\.\d+\.\d+$/);
    assert.ok(info.cmakeDir?.endsWith('Torch'));
  });

  it('LIBTORCH wins and a bad LIBTORCH is a clear error', () => {
    const choice = JSON.parse(readFileSync(join(REPO_ROOT, 'build/libtorch.json'), 'utf8')) as { dir: string };
    const saved = process.env['LIBTORCH'];
    try {
      process.env['LIBTORCH'] = choice.dir;
      const found = locateLibtorch(REPO_ROOT);
      assert.equal(found.source, 'LIBTORCH');
      const empty = mkdtempSync(join(tmpdir(), 'medtune-lt-'));
      mkdirSync(join(empty, 'include'));
      process.env['LIBTORCH'] = empty;
      assert.throws(() => locateLibtorch(REPO_ROOT), /LIBTORCH=.* is not usable: no share\/cmake\/Torch/);
    } finally {
      if (saved === undefined) delete process.env['LIBTORCH'];
      else process.env['LIBTORCH'] = saved;
    }
  });

  it('a second install does not rebuild: it reuses the source build or the prebuild', () => {
    const out = execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/install.mjs')], { encoding: 'utf8', cwd: REPO_ROOT });
    assert.match(out, /native addon is up to date|using the prebuilt binary .* nothing to compile/);
    assert.doesNotMatch(out, /medtune: building/);
  });
});
