// A small QR code encoder (ISO/IEC 18004): byte mode, error correction level M, versions 1–10
// (up to 213 bytes, enough for an otpauth:// URI). Runs in the page: the enrolment secret never
// leaves it for an outside service. Usage: CareHubQR.draw(canvas, text).
(function () {
  "use strict";

  // Per version (index 1–10), level M: error-correction codewords per block, and the blocks'
  // data-codeword counts.
  const BLOCKS = [null,
    [10, [16]], [16, [28]], [26, [44]], [18, [32, 32]], [24, [43, 43]],
    [16, [27, 27, 27, 27]], [18, [31, 31, 31, 31]], [22, [38, 38, 39, 39]],
    [22, [36, 36, 36, 37, 37]], [26, [43, 43, 43, 43, 44]]];
  const ALIGNMENT = [null, [], [6, 18], [6, 22], [6, 26], [6, 30], [6, 34], [6, 22, 38], [6, 24, 42], [6, 26, 46], [6, 28, 50]];

  // GF(256) with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1.
  function gfMultiply(a, b) {
    let product = 0;
    for (let bit = 7; bit >= 0; bit--) {
      product = (product << 1) ^ ((product >>> 7) * 0x11d);
      if ((b >>> bit) & 1) product ^= a;
    }
    return product & 0xff;
  }

  // Coefficients of the generator polynomial of the given degree (highest first, leading 1 dropped).
  function generator(degree) {
    const coefficients = new Array(degree).fill(0);
    coefficients[degree - 1] = 1;
    let root = 1;
    for (let i = 0; i < degree; i++) {
      for (let j = 0; j < degree; j++) {
        coefficients[j] = gfMultiply(coefficients[j], root) ^ (j + 1 < degree ? coefficients[j + 1] : 0);
      }
      root = gfMultiply(root, 2);
    }
    return coefficients;
  }

  function errorCorrection(data, degree) {
    const divisor = generator(degree);
    const remainder = new Array(degree).fill(0);
    for (const byte of data) {
      const factor = byte ^ remainder.shift();
      remainder.push(0);
      for (let i = 0; i < degree; i++) remainder[i] ^= gfMultiply(divisor[i], factor);
    }
    return remainder;
  }

  // Data bits → interleaved codewords with error correction.
  function codewords(bytes, version) {
    const [ecLength, blockSizes] = BLOCKS[version];
    const capacity = blockSizes.reduce((a, b) => a + b, 0);
    const bits = [];
    const put = (value, length) => { for (let i = length - 1; i >= 0; i--) bits.push((value >>> i) & 1); };
    put(0b0100, 4);
    put(bytes.length, version < 10 ? 8 : 16);
    for (const byte of bytes) put(byte, 8);
    put(0, Math.min(4, capacity * 8 - bits.length));
    while (bits.length % 8) bits.push(0);
    const data = [];
    for (let i = 0; i < bits.length; i += 8) data.push(bits.slice(i, i + 8).reduce((a, b) => (a << 1) | b, 0));
    for (let pad = 0xec; data.length < capacity; pad ^= 0xec ^ 0x11) data.push(pad);

    const blocks = [];
    let offset = 0;
    for (const size of blockSizes) {
      const block = data.slice(offset, offset + size);
      offset += size;
      blocks.push({ data: block, ec: errorCorrection(block, ecLength) });
    }
    const out = [];
    for (let i = 0; i < Math.max(...blockSizes); i++) for (const block of blocks) if (i < block.data.length) out.push(block.data[i]);
    for (let i = 0; i < ecLength; i++) for (const block of blocks) out.push(block.ec[i]);
    return out;
  }

  function matrix(text) {
    const bytes = Array.from(new TextEncoder().encode(text));
    let version = 1;
    while (version <= 10) {
      const capacity = BLOCKS[version][1].reduce((a, b) => a + b, 0);
      if (4 + (version < 10 ? 8 : 16) + bytes.length * 8 <= capacity * 8) break;
      version++;
    }
    if (version > 10) throw new Error("text too long for a QR code here");
    const size = 17 + 4 * version;
    const dark = Array.from({ length: size }, () => new Array(size).fill(false));
    const reserved = Array.from({ length: size }, () => new Array(size).fill(false));
    const set = (x, y, value) => { dark[y][x] = value; reserved[y][x] = true; };

    // Timing patterns, then finders with their separators, then alignment patterns.
    for (let i = 0; i < size; i++) { set(6, i, i % 2 === 0); set(i, 6, i % 2 === 0); }
    for (const [cx, cy] of [[3, 3], [size - 4, 3], [3, size - 4]]) {
      for (let dy = -4; dy <= 4; dy++) for (let dx = -4; dx <= 4; dx++) {
        const x = cx + dx, y = cy + dy;
        if (x < 0 || y < 0 || x >= size || y >= size) continue;
        const distance = Math.max(Math.abs(dx), Math.abs(dy));
        set(x, y, distance !== 2 && distance !== 4);
      }
    }
    const centres = ALIGNMENT[version];
    for (const cx of centres) for (const cy of centres) {
      const last = centres.length - 1;
      if ((cx === centres[0] && cy === centres[0]) || (cx === centres[0] && cy === centres[last]) || (cx === centres[last] && cy === centres[0])) continue;
      for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) set(cx + dx, cy + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
    }
    if (version >= 7) {
      let remainder = version;
      for (let i = 0; i < 12; i++) remainder = (remainder << 1) ^ ((remainder >>> 11) * 0x1f25);
      const bits = (version << 12) | remainder;
      for (let i = 0; i < 18; i++) {
        const on = ((bits >>> i) & 1) === 1;
        const a = size - 11 + (i % 3), b = Math.floor(i / 3);
        set(a, b, on);
        set(b, a, on);
      }
    }
    const drawFormat = mask => {
      const value = (0b00 << 3) | mask; // level M
      let remainder = value;
      for (let i = 0; i < 10; i++) remainder = (remainder << 1) ^ ((remainder >>> 9) * 0x537);
      const bits = ((value << 10) | remainder) ^ 0x5412;
      const bit = i => ((bits >>> i) & 1) === 1;
      for (let i = 0; i <= 5; i++) set(8, i, bit(i));
      set(8, 7, bit(6));
      set(8, 8, bit(7));
      set(7, 8, bit(8));
      for (let i = 9; i < 15; i++) set(14 - i, 8, bit(i));
      for (let i = 0; i < 8; i++) set(size - 1 - i, 8, bit(i));
      for (let i = 8; i < 15; i++) set(8, size - 15 + i, bit(i));
      set(8, size - 8, true);
    };
    drawFormat(0); // reserves the format areas

    // Codewords in the two-column zigzag, right to left, skipping the vertical timing column.
    const data = codewords(bytes, version);
    let index = 0;
    for (let right = size - 1; right >= 1; right -= 2) {
      if (right === 6) right = 5;
      for (let step = 0; step < size; step++) {
        const upward = ((right + 1) & 2) === 0;
        const y = upward ? size - 1 - step : step;
        for (const x of [right, right - 1]) {
          if (reserved[y][x]) continue;
          dark[y][x] = index < data.length * 8 && ((data[index >>> 3] >>> (7 - (index & 7))) & 1) === 1;
          index++;
        }
      }
    }

    const masks = [
      (x, y) => (x + y) % 2 === 0, (x, y) => y % 2 === 0, x => x % 3 === 0, (x, y) => (x + y) % 3 === 0,
      (x, y) => (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0, (x, y) => ((x * y) % 2) + ((x * y) % 3) === 0,
      (x, y) => (((x * y) % 2) + ((x * y) % 3)) % 2 === 0, (x, y) => (((x + y) % 2) + ((x * y) % 3)) % 2 === 0,
    ];
    const apply = mask => {
      for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) if (!reserved[y][x] && masks[mask](x, y)) dark[y][x] = !dark[y][x];
    };
    // Pick the mask with the fewest long runs and 2×2 blocks and the most even balance.
    const penalty = () => {
      let score = 0, darkCount = 0;
      for (let y = 0; y < size; y++) {
        for (let run = 1, x = 1; x <= size; x++) {
          if (x < size && dark[y][x] === dark[y][x - 1]) { run++; continue; }
          if (run >= 5) score += run - 2;
          run = 1;
        }
      }
      for (let x = 0; x < size; x++) {
        for (let run = 1, y = 1; y <= size; y++) {
          if (y < size && dark[y][x] === dark[y - 1][x]) { run++; continue; }
          if (run >= 5) score += run - 2;
          run = 1;
        }
      }
      for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
        if (dark[y][x]) darkCount++;
        if (x + 1 < size && y + 1 < size && dark[y][x] === dark[y][x + 1] && dark[y][x] === dark[y + 1][x] && dark[y][x] === dark[y + 1][x + 1]) score += 3;
      }
      return score + 10 * Math.floor(Math.abs(darkCount * 20 - size * size * 10) / (size * size));
    };
    let best = 0, bestScore = Infinity;
    for (let mask = 0; mask < 8; mask++) {
      apply(mask);
      drawFormat(mask);
      const score = penalty();
      if (score < bestScore) { best = mask; bestScore = score; }
      apply(mask); // undo
    }
    apply(best);
    drawFormat(best);
    return dark;
  }

  // Draws `text` on `canvas` with a four-module quiet zone.
  function draw(canvas, text, scale) {
    const modules = matrix(text);
    const unit = scale || 4;
    const side = (modules.length + 8) * unit;
    canvas.width = side;
    canvas.height = side;
    const context = canvas.getContext("2d");
    context.fillStyle = "#fff";
    context.fillRect(0, 0, side, side);
    context.fillStyle = "#000";
    modules.forEach((row, y) => row.forEach((on, x) => { if (on) context.fillRect((x + 4) * unit, (y + 4) * unit, unit, unit); }));
  }

  window.CareHubQR = { draw: draw, matrix: matrix };
})();
