/**
 * A reader for the data literals that minified JavaScript bundles carry (nsfwjs ships its
 * model as `…exports={modelTopology:{…},weightsManifest:[…]}…` inside a UMD wrapper): objects
 * with bare or quoted keys, arrays, double- or single-quoted strings, numbers in any JS
 * spelling (.5, -1e-3), true/false/null, and the minifier's !0 / !1. Anything else (a call, a
 * variable) is an error naming the position: the bundle is read as data, never run.
 */

export class LiteralError extends Error {
  constructor(source: string, position: number, problem: string) {
    super(`${source}: ${problem} at character ${position}`);
    this.name = 'LiteralError';
  }
}

export type JsValue = null | boolean | number | string | JsValue[] | { [key: string]: JsValue };

/** Parses one literal starting at `start`; returns it and the index just past it. */
export function parseJsLiteral(text: string, start: number, source = '<literal>'): { value: JsValue; end: number } {
  let i = start;
  const fail = (problem: string): never => {
    throw new LiteralError(source, i, problem);
  };
  const space = (): void => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const identifier = (): string => {
    const m = /^[A-Za-z_$][\w$]*/.exec(text.slice(i, i + 256));
    if (!m) return fail(`expected a key, found ${JSON.stringify(text.slice(i, i + 12))}`);
    i += m[0].length;
    return m[0];
  };
  const string = (): string => {
    const quote = text[i];
    let out = '';
    i++;
    while (i < text.length && text[i] !== quote) {
      if (text[i] === '\\') {
        const c = text[i + 1];
        const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', v: '\v', '0': '\0' };
        if (c === 'u') {
          out += String.fromCharCode(Number.parseInt(text.slice(i + 2, i + 6), 16));
          i += 6;
        } else if (c === 'x') {
          out += String.fromCharCode(Number.parseInt(text.slice(i + 2, i + 4), 16));
          i += 4;
        } else {
          out += simple[c] ?? c;
          i += 2;
        }
        continue;
      }
      // Copy a run of plain characters at once (the weight shards are megabytes of base64).
      let j = i;
      while (j < text.length && text[j] !== quote && text[j] !== '\\') j++;
      out += text.slice(i, j);
      i = j;
    }
    if (i >= text.length) fail('unterminated string');
    i++;
    return out;
  };
  const value = (depth: number): JsValue => {
    if (depth > 64) fail('literal nested too deeply');
    space();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: { [key: string]: JsValue } = {};
      space();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        space();
        const key = text[i] === '"' || text[i] === "'" ? string() : /[0-9]/.test(text[i]) ? String(number()) : identifier();
        space();
        if (text[i] !== ':') fail(`expected ':' after key ${JSON.stringify(key)}`);
        i++;
        // A key like "__proto__" stays an ordinary own property.
        Object.defineProperty(obj, key, { value: value(depth + 1), enumerable: true, writable: true, configurable: true });
        space();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail("expected ',' or '}' in an object");
      }
    }
    if (c === '[') {
      i++;
      const arr: JsValue[] = [];
      space();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        space();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail("expected ',' or ']' in an array");
      }
    }
    if (c === '"' || c === "'") return string();
    if (c === '!' && (text[i + 1] === '0' || text[i + 1] === '1')) {
      i += 2;
      return text[i - 1] === '0';
    }
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, i) && !/[\w$]/.test(text[i + word.length] ?? '')) {
        i += word.length;
        return v;
      }
    }
    return number();
  };
  const number = (): number => {
    const m = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/.exec(text.slice(i, i + 64));
    if (!m) return fail(`expected a value, found ${JSON.stringify(text.slice(i, i + 12))}`);
    i += m[0].length;
    // Number() reads a literal exactly as the JavaScript parser would (same rounding).
    return Number(m[0]);
  };
  const v = value(0);
  return { value: v, end: i };
}

/**
 * Every string literal in `text` (code or data) longer than `minLength`, with its position —
 * how a weight shard's base64 payload is found without running the wrapper around it.
 */
export function longStringLiterals(text: string, minLength: number): Array<{ start: number; value: string }> {
  const out: Array<{ start: number; value: string }> = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== '"' && c !== "'") continue;
    let j = i + 1;
    while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
    if (j - i - 1 > minLength) out.push({ start: i, value: parseJsLiteral(text, i).value as string });
    i = j;
  }
  return out;
}
