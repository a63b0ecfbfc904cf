// Name patterns for masks and LoRA targets: shell-style globs as Python's fnmatch reads them
// (`*` any run of characters, dots included; `?` one character; `[abc]` / `[!abc]` classes), or a
// regular expression written `re:<pattern>` that must match the whole name (re.fullmatch, as
// peft reads a string target_modules). A pattern without wildcards that names a module
// ("classifier", "multi_modal_projector") also selects everything under it.

export class PatternError extends Error {
  override name = 'PatternError';
  readonly code = 'MEDTUNE_BAD_PATTERN';
}

export interface NamePattern {
  /** As written. */
  source: string;
  /** True when the whole name, or a dotted prefix of it (a module path), matches. */
  matches(name: string): boolean;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** fnmatch.translate: the glob as an anchored regular expression. */
export function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        out += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, close);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      out += `[${body.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else out += escapeRegExp(c);
  }
  return new RegExp(`^(?:${out})$`, 's');
}

/** Every dotted prefix of a name, the name itself last: a.b.c -> a, a.b, a.b.c. */
function prefixes(name: string): string[] {
  const parts = name.split('.');
  return parts.map((_, i) => parts.slice(0, i + 1).join('.'));
}

export function compilePattern(source: string): NamePattern {
  if (typeof source !== 'string' || source.trim() === '') throw new PatternError(`a name pattern must be a non-empty string, got ${JSON.stringify(source)}`);
  const text = source.trim();
  if (text.startsWith('re:')) {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${text.slice(3)})$`, 's');
    } catch (err) {
      throw new PatternError(`'${source}': not a valid regular expression (${(err as Error).message})`);
    }
    return { source, matches: (name) => prefixes(name).some((p) => re.test(p)) };
  }
  const re = globToRegExp(text);
  return { source, matches: (name) => prefixes(name).some((p) => re.test(p)) };
}

/** Splits a comma-separated list, keeping commas inside [...] (qkv[q,v]) and regexes' {m,n}. */
export function splitList(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const c of text) {
    if (c === '[' || c === '{' || c === '(') depth++;
    if (c === ']' || c === '}' || c === ')') depth = Math.max(0, depth - 1);
    if (c === ',' && depth === 0) {
      if (current.trim()) out.push(current.trim());
      current = '';
    } else current += c;
  }
  if (current.trim()) out.push(current.trim());
  return out;
}
