// saksi: the reader's browser checks a TPS page against the signed log.
//
// 1. Fetch the checkpoint from /log/ (or a mirror's), check its Ed25519 signature by the verifier key
//    the page names (WebCrypto), and read its size and root hash (C2SP signed-note, tlog-checkpoint).
// 2. For every log entry the page shows: fetch its entry bundle (C2SP tlog-tiles), hash it as an
//    RFC 6962 leaf, build its inclusion proof from the hash tiles, and check it against the root.
// 3. Decode each entry (canonical JSON) and compare every figure the page shows with it
//    (`data-entry` + `data-field`), and every verdict and rule code.
// The outcome is written in words and as data-state="verified|failed|pending|unavailable" on
// #verification, for monitors and tests. Nothing here trusts the page's server more than the key.
'use strict';

(function () {
  const box = document.getElementById('verification');
  const english = document.documentElement.lang === 'en';
  const t = (id, en) => (english ? en : id);
  const outcome = box && box.querySelector('.outcome');

  function report(state, message) {
    box.dataset.state = state;
    outcome.textContent = message;
  }

  class Disagreement extends Error {}

  // fetch, with an unreachable log (network, or a mirror that does not allow this page's origin)
  // said in words.
  async function get(url, options) {
    try {
      return await fetch(url, options);
    } catch (e) {
      throw new Disagreement(
        t('log tidak dapat dihubungi di ', 'the log cannot be reached at ') + url +
          t(' (jaringan, atau salinan yang tidak mengizinkan halaman ini: CORS)', ' (network, or a mirror that does not allow this page: CORS)'),
      );
    }
  }

  // --- bytes ---------------------------------------------------------------------------------------
  function fromBase64(text) {
    let raw;
    try {
      raw = atob(text);
    } catch (e) {
      throw new Disagreement(t('bukan base64: ', 'not base64: ') + String(text).slice(0, 60));
    }
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
  function equal(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  }
  // RFC 6962 hashes: 0x00 before a leaf, 0x01 before two children.
  const leafHash = (entry) => sha256(concat(new Uint8Array([0]), entry));
  const nodeHash = (left, right) => sha256(concat(new Uint8Array([1]), left, right));

  // --- the verifier key and the checkpoint ---------------------------------------------------------
  // A vkey is `name+hexkeyhash+base64(0x01 || 32-byte Ed25519 key)` (C2SP signed-note).
  async function parseVkey(vkey) {
    // The key's base64 may itself hold '+': split at the first two only.
    const first = vkey.indexOf('+');
    const second = vkey.indexOf('+', first + 1);
    const [name, keyHash, key64] = first > 0 && second > first
      ? [vkey.slice(0, first), vkey.slice(first + 1, second), vkey.slice(second + 1)]
      : ['', '', ''];
    const key = fromBase64(key64);
    if (!name || !/^[0-9a-f]{8}$/.test(keyHash) || key.length !== 33 || key[0] !== 1) {
      throw new Disagreement(t('kunci pemeriksa tidak sah', 'the verifier key is malformed'));
    }
    const expected = (await sha256(concat(new TextEncoder().encode(name + '\n'), key))).slice(0, 4);
    if (hex(expected) !== keyHash) {
      throw new Disagreement(t('sidik jari kunci tidak cocok dengan kuncinya', "the key's fingerprint does not match the key"));
    }
    const publicKey = await crypto.subtle.importKey('raw', key.slice(1), { name: 'Ed25519' }, false, ['verify']);
    return { name, keyHash: fromHex(keyHash), publicKey };
  }
  function fromHex(text) {
    return new Uint8Array(text.match(/../g).map((h) => parseInt(h, 16)));
  }

  async function checkCheckpoint(text, key) {
    const split = text.indexOf('\n\n');
    if (split < 0) throw new Disagreement(t('checkpoint tanpa tanda tangan', 'the checkpoint has no signatures'));
    const body = text.slice(0, split + 1);
    let signed = false;
    for (const line of text.slice(split + 2).split('\n')) {
      const match = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!match || match[1] !== key.name) continue;
      const sig = fromBase64(match[2]);
      if (sig.length !== 68 || !equal(sig.slice(0, 4), key.keyHash)) continue;
      signed = await crypto.subtle.verify({ name: 'Ed25519' }, key.publicKey, sig.slice(4), new TextEncoder().encode(body));
      if (signed) break;
    }
    if (!signed) {
      throw new Disagreement(t('checkpoint tidak ditandatangani oleh kunci log ini', "the checkpoint is not signed by this log's key"));
    }
    const lines = body.split('\n');
    const size = Number(lines[1]);
    const root = fromBase64(lines[2] || '');
    if (lines[0] !== key.name || !/^[0-9]+$/.test(lines[1]) || !Number.isSafeInteger(size) || root.length !== 32) {
      throw new Disagreement(t('checkpoint tidak sah', 'the checkpoint is malformed'));
    }
    return { size, root };
  }

  // --- tiles ---------------------------------------------------------------------------------------
  // A tile index as path elements of three digits, all but the last prefixed with x (C2SP tlog-tiles).
  function tileIndexPath(n) {
    const groups = [];
    do {
      groups.unshift(String(n % 1000).padStart(3, '0'));
      n = Math.floor(n / 1000);
    } while (n > 0);
    return groups.map((g, i) => (i < groups.length - 1 ? 'x' + g : g)).join('/');
  }

  function makeTiles(base, size) {
    const cache = new Map();
    // The tile at `level` (or `entries`) and `index`, of the width the tree of `size` gives it.
    async function fetchTile(kind, tileLevel, index) {
      const atLevel = Math.floor(size / Math.pow(256, tileLevel));
      const width = index < Math.floor(atLevel / 256) ? 256 : atLevel % 256;
      const path = 'tile/' + kind + '/' + tileIndexPath(index) + (width < 256 ? '.p/' + width : '');
      if (!cache.has(path)) {
        cache.set(path, (async () => {
          let response = await get(base + path, { cache: 'force-cache' });
          if (!response.ok && width < 256) {
            // A partial tile may be gone once the full one exists: its prefix is the same.
            response = await get(base + 'tile/' + kind + '/' + tileIndexPath(index), { cache: 'force-cache' });
          }
          if (!response.ok) throw new Disagreement(t('log tidak menyediakan ', 'the log does not serve ') + path);
          return { bytes: new Uint8Array(await response.arrayBuffer()), width };
        })());
      }
      return cache.get(path);
    }
    async function entry(index) {
      const { bytes, width } = await fetchTile('entries', 0, Math.floor(index / 256));
      let at = 0;
      const entries = [];
      while (at + 2 <= bytes.length && entries.length < width) {
        const length = (bytes[at] << 8) | bytes[at + 1];
        entries.push(bytes.slice(at + 2, at + 2 + length));
        at += 2 + length;
      }
      const found = entries[index % 256];
      if (entries.length < width || !found) throw new Disagreement(t('bundel entri terpotong', 'an entry bundle is truncated'));
      return found;
    }
    // The hash of the complete subtree of 2^level leaves numbered `n` at that level.
    async function storedHash(level, n) {
      const tileLevel = Math.floor(level / 8);
      const below = level - 8 * tileLevel;
      const first = n * Math.pow(2, below);
      const { bytes } = await fetchTile(String(tileLevel), tileLevel, Math.floor(first / 256));
      let hashes = [];
      for (let i = 0; i < Math.pow(2, below); i++) {
        const at = ((first % 256) + i) * 32;
        if (at + 32 > bytes.length) throw new Disagreement(t('tile hash terpotong', 'a hash tile is truncated'));
        hashes.push(bytes.slice(at, at + 32));
      }
      while (hashes.length > 1) {
        const up = [];
        for (let i = 0; i < hashes.length; i += 2) up.push(await nodeHash(hashes[i], hashes[i + 1]));
        hashes = up;
      }
      return hashes[0];
    }
    return { entry, storedHash };
  }

  const largestPowerOfTwoBelow = (n) => {
    let k = 1;
    while (k * 2 < n) k *= 2;
    return k;
  };

  // The hash of leaves [lo, hi): complete subtrees from the tiles, the ragged right edge computed.
  async function rangeHash(tiles, lo, hi) {
    const n = hi - lo;
    if ((n & (n - 1)) === 0 && lo % n === 0) return tiles.storedHash(Math.log2(n), lo / n);
    const k = largestPowerOfTwoBelow(n);
    return nodeHash(await rangeHash(tiles, lo, lo + k), await rangeHash(tiles, lo + k, hi));
  }

  // RFC 6962 PATH(m, D[lo:hi]).
  async function inclusionProof(tiles, m, lo, hi) {
    if (hi - lo <= 1) return [];
    const k = largestPowerOfTwoBelow(hi - lo);
    if (m - lo < k) return [...(await inclusionProof(tiles, m, lo, lo + k)), await rangeHash(tiles, lo + k, hi)];
    return [...(await inclusionProof(tiles, m, lo + k, hi)), await rangeHash(tiles, lo, lo + k)];
  }

  // RFC 9162 section 2.1.3.2: the root an inclusion proof leads to.
  async function rootFromProof(index, size, leaf, proof) {
    let fn = index;
    let sn = size - 1;
    let r = leaf;
    for (const p of proof) {
      if (sn === 0) return null;
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) {
            fn = Math.floor(fn / 2);
            sn = Math.floor(sn / 2);
          }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    return sn === 0 ? r : null;
  }

  // The log checks, for the page's other scripts (lapor.js checks a report's receipt with them).
  window.saksiLog = { fromBase64, hex, equal, sha256, leafHash, parseVkey, checkCheckpoint, rootFromProof };
  if (!box) return;

  // --- what the page shows -------------------------------------------------------------------------
  // A figure as the reader sees it: digits without separators, or null for "–".
  function shownNumber(element) {
    const text = element.childNodes.length ? element.childNodes[0].textContent : element.textContent;
    const digits = text.replace(/[^0-9-]/g, '');
    return digits === '' ? null : Number(digits);
  }

  function fieldOf(entry, path) {
    if (entry.type === 'transcription') {
      const sheet = entry.sheet || {};
      if (path.startsWith('votes.')) return (sheet.votes || {})[path.slice(6)] ?? null;
      return (sheet.fields || {})[path] ?? null;
    }
    let value = entry.type === 'copy' ? (entry.copy || {}).form : entry.form;
    for (const part of path.split('.')) value = value == null ? undefined : value[part];
    return value ?? null;
  }

  // The TPS an entry must belong to: its row's on a desa page, the page's on a TPS page.
  function expectedTps(index) {
    const element = document.querySelector('[data-entry="' + index + '"]');
    const row = element && element.closest('tr[data-code]');
    if (row) return row.dataset.code;
    return location.pathname.startsWith('/tps/') ? location.pathname.split('/').pop() : null;
  }

  // A desa page: its totals must be the sums of its TPS rows' checked figures (when every counted
  // TPS could be checked). Returns the number of totals compared, or -1 when some TPS could not be.
  function checkSums() {
    const rows = document.querySelectorAll('tbody tr[data-code]');
    const checkedRows = Array.from(rows).filter((r) => r.querySelector('[data-entry]'));
    const reported = document.querySelector('[data-figure="tps_reported"]');
    if (!reported || shownNumber(reported) !== checkedRows.length) return -1;
    let compared = 0;
    for (const total of document.querySelectorAll('[data-figure]')) {
      const field = total.dataset.figure;
      if (total.closest('tr[data-code]') || !(field === 'valid' || field.startsWith('votes.'))) continue;
      let sum = 0;
      for (const row of checkedRows) {
        const cell = row.querySelector('[data-field="' + field + '"]');
        if (!cell) return -1;
        sum += shownNumber(cell) || 0;
      }
      if (sum !== shownNumber(total)) {
        throw new Disagreement(
          t('jumlah ', 'the total ') + field + t(' di halaman (', ' on the page (') + shownNumber(total) +
            t(') berbeda dengan jumlah TPS yang diperiksa (', ') differs from the sum of the checked TPS (') + sum + ')',
        );
      }
      compared++;
    }
    return compared;
  }

  function checkEntry(index, entry, tps) {
    const where = t('entri ', 'entry ') + index;
    // A poll witness's copy is checked like a form: its figures as the page shows them.
    const form = entry.type === 'transcription' ? entry.sheet : entry.type === 'copy' ? (entry.copy || {}).form : entry.form;
    if (!form || (entry.type !== 'form' && entry.type !== 'transcription' && entry.type !== 'copy')) {
      throw new Disagreement(where + t(' bukan formulir TPS', ' is not a TPS form'));
    }
    if (form.tps !== tps) {
      throw new Disagreement(where + t(' milik TPS lain: ', ' belongs to another TPS: ') + form.tps);
    }
    let checked = 0;
    for (const element of document.querySelectorAll('[data-entry="' + index + '"][data-field]')) {
      const shown = shownNumber(element);
      const logged = fieldOf(entry, element.dataset.field);
      if (shown !== logged) {
        throw new Disagreement(
          t('halaman menampilkan ', 'the page shows ') + (shown ?? '–') + t(' untuk ', ' for ') + element.dataset.field +
          t(', tetapi ', ', but ') + where + t(' di log berisi ', ' in the log holds ') + (logged ?? '–'),
        );
      }
      checked++;
    }
    const row = document.querySelector('tr[data-index="' + index + '"]');
    if (row) {
      const verdict = entry.verdict || {};
      const shownVerdict = row.dataset.verdict === 'accepted';
      const shownRules = (row.dataset.rules || '').split(' ').filter(Boolean);
      const pageRules = Array.from(row.querySelectorAll('[data-rule]'), (e) => e.dataset.rule);
      const logged = (verdict.rejected_by || []).join(' ');
      if (shownVerdict !== verdict.accepted || shownRules.join(' ') !== logged || pageRules.join(' ') !== logged) {
        throw new Disagreement(where + t(': putusan di halaman berbeda dengan putusan di log', ': the verdict on the page differs from the one in the log'));
      }
      checked++;
    }
    return checked;
  }

  // --- the check -----------------------------------------------------------------------------------
  async function verify() {
    const indexes = Array.from(document.querySelectorAll('tr[data-index]'), (row) => Number(row.dataset.index));
    for (const element of document.querySelectorAll('[data-entry]')) indexes.push(Number(element.dataset.entry));
    const unique = Array.from(new Set(indexes)).sort((a, b) => a - b);
    if (unique.length === 0) return; // nothing on the page comes from the log yet
    const mirror = new URLSearchParams(location.search).get('mirror');
    const base = mirror ? (mirror.endsWith('/') ? mirror : mirror + '/') : '/log/';
    const from = mirror ? t(' (dari salinan ', ' (from the mirror ') + base + ')' : '';
    const started = performance.now();

    const key = await parseVkey(box.dataset.vkey);
    const response = await get(base + 'checkpoint', { cache: 'no-store' });
    if (!response.ok) throw new Disagreement(t('checkpoint tidak dapat diambil', 'the checkpoint cannot be fetched'));
    const checkpoint = await checkCheckpoint(await response.text(), key);
    const pending = unique.filter((i) => i >= checkpoint.size);
    if (pending.length > 0) return { pending: true };
    const tiles = makeTiles(base, checkpoint.size);
    let figures = 0;
    for (const index of unique) {
      const bytes = await tiles.entry(index);
      const proof = await inclusionProof(tiles, index, 0, checkpoint.size);
      const root = await rootFromProof(index, checkpoint.size, await leafHash(bytes), proof);
      if (!root || !equal(root, checkpoint.root)) {
        throw new Disagreement(
          t('entri ', 'entry ') + index + t(' tidak cocok dengan checkpoint: log ini tidak sesuai dengan akar yang ditandatangani', ' does not match the checkpoint: this log disagrees with its signed root'),
        );
      }
      let entry;
      try {
        entry = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
      } catch (e) {
        throw new Disagreement(t('entri ', 'entry ') + index + t(' bukan JSON', ' is not JSON'));
      }
      figures += checkEntry(index, entry, expectedTps(index));
    }
    const sums = box.dataset.sum === 'tps' ? checkSums() : 0;
    box.dataset.checkpointSize = String(checkpoint.size);
    box.dataset.entries = String(unique.length);
    box.dataset.figures = String(figures);
    box.dataset.millis = String(Math.round(performance.now() - started));
    box.dataset.sums = String(sums);
    const onDesa = box.dataset.sum === 'tps';
    let words = t('Terverifikasi: ', 'Verified: ') + unique.length +
      (onDesa
        ? t(' entri TPS di halaman ini ada di log yang ditandatangani (ukuran ', unique.length === 1 ? ' TPS entry on this page is in the signed log (size ' : ' TPS entries on this page are in the signed log (size ')
        : t(' entri TPS ini ada di log yang ditandatangani (ukuran ', unique.length === 1 ? ' entry of this TPS is in the signed log (size ' : ' entries of this TPS are in the signed log (size ')) +
      checkpoint.size + ')' + from + '; ' + figures +
      t(' angka dan putusan di halaman ini sama dengan isi entri.', ' figures and verdicts on this page equal the entries.');
    if (onDesa) {
      words += sums > 0
        ? t(' Jumlah kelurahan/desa ini sama dengan jumlah TPS yang diperiksa.', " This village's totals equal the sums of the checked TPS.")
        : t(' Jumlah kelurahan/desa ini TIDAK diperiksa: ada TPS terhitung yang entrinya tidak memuat semua angka.', " This village's totals were NOT checked: a counted TPS's entry lacks some figures.");
    }
    report('verified', words);
    return { pending: false };
  }

  if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
    report(
      'unavailable',
      t(
        'Peramban tidak dapat memeriksa di sini: WebCrypto hanya tersedia pada HTTPS atau localhost. Buka halaman ini melalui HTTPS, atau periksa log dengan `saksi verify`.',
        'Your browser cannot check here: WebCrypto exists only over HTTPS or on localhost. Open this page over HTTPS, or check the log with `saksi verify`.',
      ),
    );
    return;
  }
  if (document.querySelectorAll('tr[data-index], [data-entry]').length === 0) {
    if (box.dataset.sum === 'tps') report('pending', t('Belum ada TPS terhitung di sini; tidak ada yang diperiksa.', 'No counted TPS here yet; nothing to check.'));
    return;
  }
  report('pending', t('Memeriksa di peramban Anda…', 'Checking in your browser…'));
  let attempts = 0;
  const run = () =>
    verify()
      .then((result) => {
        // Entries newer than the checkpoint: it is published within seconds; ask again.
        if (result && result.pending && ++attempts < 30) {
          report('pending', t('Menunggu checkpoint yang mencakup entri ini…', 'Waiting for a checkpoint that covers these entries…'));
          setTimeout(run, 1000);
        }
      })
      .catch((e) => {
        const why = e instanceof Disagreement ? e.message : t('pemeriksaan gagal: ', 'the check failed: ') + e;
        report('failed', t('GAGAL: ', 'FAILED: ') + why);
      });
  run();
})();
