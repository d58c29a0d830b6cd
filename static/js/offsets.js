/* offsets.js: the one place where browser positions meet stored offsets.
 *
 * The DOM (Range, Selection, String.prototype.slice) counts UTF-16 code units; the server
 * stores Python str indices, i.e. Unicode code points, end exclusive. An emoji outside the
 * BMP is 2 units but 1 code point, so every offset crosses this module on its way in or out.
 *
 * Also here: snapping a selection outward to word (or token) boundaries, never splitting a
 * surrogate pair or a base letter from its combining marks, and trimming whitespace
 * (incl. NBSP) from both ends. Everything below works in UTF-16 units unless it says cp.
 */
(function (root) {
  'use strict';

  // Whitespace as the server means it (Python str.isspace() or category Zs).
  var SPACE = /[\s\x1c-\x1f\x85\p{Zs}]/u;
  // Characters that make up a word: letters, digits, combining marks, connector punctuation.
  var WORD = /[\p{L}\p{N}\p{M}\p{Pc}]/u;
  var MARK = /[\p{M}\u200d\ufe0e\ufe0f]/u;

  function isHigh(c) { return c >= 0xd800 && c <= 0xdbff; }
  function isLow(c) { return c >= 0xdc00 && c <= 0xdfff; }

  /** Index of astral characters: O(log n) conversions in both directions for long texts. */
  function OffsetMap(text) {
    this.text = text;
    this.length16 = text.length;
    var astral = []; // UTF-16 index of each high surrogate of a pair
    for (var i = 0; i < text.length; i++) {
      if (isHigh(text.charCodeAt(i)) && i + 1 < text.length && isLow(text.charCodeAt(i + 1))) {
        astral.push(i);
        i++;
      }
    }
    this.astral = astral;
    this.lengthCp = text.length - astral.length;
  }

  // Number of astral pairs whose high surrogate is at a UTF-16 index < u.
  OffsetMap.prototype._pairsBefore16 = function (u) {
    var a = this.astral, lo = 0, hi = a.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (a[mid] < u) lo = mid + 1; else hi = mid; }
    return lo;
  };

  /** UTF-16 index -> code point index. An index inside a pair counts as the pair's start. */
  OffsetMap.prototype.toCp = function (u) {
    if (u < 0 || u > this.length16) throw new RangeError('UTF-16 offset ' + u + ' out of range');
    var n = this._pairsBefore16(u);
    // u inside a pair (just after its high surrogate): the pair was counted but not passed.
    if (n > 0 && this.astral[n - 1] === u - 1) return u - 1 - (n - 1);
    return u - n;
  };

  /** Code point index -> UTF-16 index. */
  OffsetMap.prototype.toU16 = function (cp) {
    if (cp < 0 || cp > this.lengthCp) throw new RangeError('code point offset ' + cp + ' out of range');
    // Find how many astral chars precede code point cp: astral[k] as cp index is astral[k] - k.
    var a = this.astral, lo = 0, hi = a.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (a[mid] - mid < cp) lo = mid + 1; else hi = mid; }
    return cp + lo;
  };

  /** Slice by code points. */
  OffsetMap.prototype.sliceCp = function (start, end) {
    return this.text.slice(this.toU16(start), this.toU16(end));
  };

  function utf16ToCp(text, u) { return new OffsetMap(text).toCp(u); }
  function cpToUtf16(text, cp) { return new OffsetMap(text).toU16(cp); }

  // The code point that ends just before / starts at UTF-16 index i (as a string).
  function charBefore(text, i) {
    if (i <= 0) return '';
    if (i >= 2 && isLow(text.charCodeAt(i - 1)) && isHigh(text.charCodeAt(i - 2))) return text.slice(i - 2, i);
    return text.charAt(i - 1);
  }
  function charAt(text, i) {
    if (i >= text.length) return '';
    if (isHigh(text.charCodeAt(i)) && isLow(text.charCodeAt(i + 1))) return text.slice(i, i + 2);
    return text.charAt(i);
  }
  function isSpace(ch) { return ch !== '' && SPACE.test(ch); }
  function isWord(ch) { return ch !== '' && WORD.test(ch); }

  // The browser's extended grapheme clusters (UAX #29, as annotator/spans.py checks them).
  var SEGMENTER = typeof Intl === 'object' && Intl.Segmenter
    ? new Intl.Segmenter(undefined, { granularity: 'grapheme' }) : null;

  /** Move a boundary off the middle of a user-perceived character: a surrogate pair, a letter
   *  and its combining marks, an emoji sequence (ZWJ, skin tone, flag, keycap), Hangul jamo,
   *  CR LF. The server refuses a span boundary inside one (spans.is_cluster_boundary).
   *  dir -1 moves it left (for a start), +1 right (for an end). */
  function clusterBoundary(text, i, dir) {
    i = Math.max(0, Math.min(text.length, i));
    if (SEGMENTER && i > 0 && i < text.length) {
      var seg = SEGMENTER.segment(text).containing(i);
      if (!seg || seg.index === i) return i;
      return dir < 0 ? seg.index : seg.index + seg.segment.length;
    }
    // without Intl.Segmenter: surrogate pairs and combining marks only
    if (i > 0 && i < text.length && isLow(text.charCodeAt(i)) && isHigh(text.charCodeAt(i - 1))) {
      i += dir < 0 ? -1 : 1;
    }
    if (dir < 0) {
      // start: a combining mark can't begin a span: step back to its base character.
      while (i > 0 && MARK.test(charAt(text, i))) i -= charBefore(text, i).length;
    } else {
      // end: take the combining marks that belong to the last character.
      while (i < text.length && MARK.test(charAt(text, i))) i += charAt(text, i).length;
    }
    return i;
  }

  /** Drop whitespace (incl. NBSP, ideographic space, CR/LF) from both ends. May return start === end. */
  function trim(text, start, end) {
    while (start < end && isSpace(charAt(text, start))) start += charAt(text, start).length;
    while (end > start && isSpace(charBefore(text, end))) end -= charBefore(text, end).length;
    return [start, end];
  }

  /** Extend [start, end) outward so it does not cut a word; then trim. */
  function snapToWords(text, start, end) {
    var t = trim(text, start, end);
    start = t[0]; end = t[1];
    if (start >= end) return [start, start];
    while (start > 0 && isWord(charAt(text, start)) && isWord(charBefore(text, start))) {
      start -= charBefore(text, start).length;
    }
    while (end < text.length && isWord(charBefore(text, end)) && isWord(charAt(text, end))) {
      end += charAt(text, end).length;
    }
    return [clusterBoundary(text, start, -1), clusterBoundary(text, end, 1)];
  }

  /** Extend [start, end) (UTF-16) outward to token boundaries given as [[s, e], ...] in code
   *  points (sorted); falls back to word snapping when there are no tokens. */
  function snapToTokens(map, tokens, start, end) {
    var text = map.text;
    var t = trim(text, start, end);
    if (t[0] >= t[1]) return [t[0], t[0]];
    var s = map.toCp(t[0]), e = map.toCp(t[1]);
    var lo = 0, hi = tokens.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (tokens[mid][1] <= s) lo = mid + 1; else hi = mid; }
    if (lo < tokens.length && tokens[lo][0] < s) s = tokens[lo][0];
    for (var k = lo; k < tokens.length && tokens[k][0] < e; k++) { if (tokens[k][1] > e) e = tokens[k][1]; }
    return trim(text, map.toU16(s), map.toU16(e));
  }

  /** Korean particles (josa) that the export tokenizer (Kiwi) cuts off the word they follow
   *  (알렉산드르 왕|은, 메타|가, 스케일|에서|는). The guidelines keep them outside spans. */
  var KO_PARTICLES = new Set(['은', '는', '이', '가', '을', '를', '의', '에', '에서', '에게', '께',
    '께서', '한테', '와', '과', '도', '로', '으로', '만', '까지', '부터', '보다', '처럼', '랑', '이랑',
    '이나', '나', '라고', '이라고', '며', '이며', '마다', '조차', '밖에', '뿐', '든지', '이든지', '야',
    '이야', '에는', '에서는', '으로는', '로는', '와는', '과는', '에도', '으로도', '로도', '서']);

  /** The end (code points) of [start, end) without the particle tokens it ends in: a token
   *  glued to the one before it (no space between) whose text is a particle; at least one
   *  token stays. ``end`` itself when it does not end in one. */
  function withoutParticles(map, tokens, start, end, particles) {
    var lo = 0, hi = tokens.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (tokens[mid][1] < end) lo = mid + 1; else hi = mid; }
    var k = lo;
    if (k >= tokens.length || tokens[k][1] !== end) return end;
    while (k > 0 && tokens[k][0] > start && tokens[k - 1][1] === tokens[k][0] &&
           particles.has(map.sliceCp(tokens[k][0], tokens[k][1]))) {
      end = tokens[k][0];
      k--;
    }
    return end;
  }

  /** The one entry point the page uses: a DOM selection (UTF-16) -> a span range (UTF-16),
   *  snapped to words/tokens unless exact, never cutting a character, never with outer spaces;
   *  with ``particles`` (a Set), snapping also leaves the particles it ends in outside. */
  function normalizeSelection(map, start, end, opts) {
    opts = opts || {};
    var text = map.text;
    if (start > end) { var x = start; start = end; end = x; }
    var r;
    if (opts.exact) {
      r = trim(text, clusterBoundary(text, start, -1), clusterBoundary(text, end, 1));
    } else if (opts.tokens && opts.tokens.length) {
      r = snapToTokens(map, opts.tokens, start, end);  // a token may end inside a character
      if (r[0] < r[1]) r = trim(text, clusterBoundary(text, r[0], -1), clusterBoundary(text, r[1], 1));
      if (r[0] < r[1] && opts.particles) {
        var s = map.toCp(r[0]), e = map.toCp(r[1]);
        r = [r[0], map.toU16(withoutParticles(map, opts.tokens, s, e, opts.particles))];
      }
    } else {
      r = snapToWords(text, start, end);
    }
    return r;
  }

  var api = {
    OffsetMap: OffsetMap,
    utf16ToCp: utf16ToCp,
    cpToUtf16: cpToUtf16,
    trim: trim,
    snapToWords: snapToWords,
    snapToTokens: snapToTokens,
    clusterBoundary: clusterBoundary,
    normalizeSelection: normalizeSelection,
    withoutParticles: withoutParticles,
    KO_PARTICLES: KO_PARTICLES,
    isSpace: isSpace,
    isWord: isWord,
  };
  if (typeof module === 'object' && module.exports) module.exports = api;
  root.Offsets = api;
})(typeof window !== 'undefined' ? window : globalThis);
