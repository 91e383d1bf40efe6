// saksi: a citizen's report, signed in the reader's browser.
//
// 1. The browser makes the reporter's Ed25519 key once (WebCrypto, exportable) and keeps it in this
//    site's localStorage; the reader can save it as a saksi key file to add follow-ups from any tool.
// 2. A photo, if any, goes to /api/v1/evidence first; the report names it by its SHA-256.
// 3. The report is canonical JSON (JCS: members sorted, no spaces) signed under the context
//    "saksi/sig/v1/report\n"; a proof-of-work stamp is made if the intake asks for one.
// 4. The answer's receipt (c2sp.org/tlog-proof) is checked here: the checkpoint's signature by the
//    log key the page names, and the inclusion of exactly the entry this browser signed.
// Without script (or without Ed25519 in WebCrypto) the form posts to /lapor and the server signs
// the report with its own key on the reader's behalf, and says so.
'use strict';

(function () {
  const form = document.querySelector('form.report-form');
  if (!form || !window.isSecureContext || !window.crypto || !crypto.subtle || !window.saksiLog) return;
  const log = window.saksiLog;
  const english = document.documentElement.lang === 'en';
  const t = (id, en) => (english ? en : id);
  const outcome = document.getElementById('report-outcome');
  const KEY_STORE = 'saksi-reporter-key';

  function say(state, message) {
    outcome.dataset.state = state;
    outcome.textContent = message;
  }

  const utf8 = (text) => new TextEncoder().encode(text);
  const base64 = (bytes) => btoa(String.fromCharCode(...bytes));

  // JCS (RFC 8785) for what a report holds: strings, safe integers, arrays and objects.
  function canonical(value) {
    if (Array.isArray(value)) return '[' + value.map(canonical).join(',') + ']';
    if (value !== null && typeof value === 'object') {
      return '{' + Object.keys(value).sort().map((k) => JSON.stringify(k) + ':' + canonical(value[k])).join(',') + '}';
    }
    return JSON.stringify(value);
  }

  // The reporter's key: made once, kept as PKCS#8 in localStorage.
  async function reporterKey() {
    const stored = localStorage.getItem(KEY_STORE);
    if (stored) {
      try {
        const privateKey = await crypto.subtle.importKey('pkcs8', log.fromBase64(stored), { name: 'Ed25519' }, true, ['sign']);
        const seed = log.fromBase64(stored).slice(-32);
        return { privateKey, publicRaw: await publicFromPkcs8(privateKey), seed };
      } catch (e) {
        // An unreadable stored key is replaced; the reader is told below through a new public key.
      }
    }
    const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
    localStorage.setItem(KEY_STORE, base64(pkcs8));
    const publicRaw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
    return { privateKey: pair.privateKey, publicRaw, seed: pkcs8.slice(-32) };
  }
  async function publicFromPkcs8(privateKey) {
    const jwk = await crypto.subtle.exportKey('jwk', privateKey);
    return log.fromBase64(jwk.x.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (jwk.x.length % 4)) % 4));
  }

  // A stamp: the first counter whose SHA-256("saksi/pow/v1\n" || signature || counter) starts
  // with `bits` zero bits.
  async function stamp(signature, bits) {
    const prefix = new Uint8Array([...utf8('saksi/pow/v1\n'), ...signature]);
    for (let n = 0; ; n++) {
      const digest = await log.sha256(new Uint8Array([...prefix, ...utf8(String(n))]));
      let zeros = 0;
      for (const byte of digest) {
        if (byte === 0) {
          zeros += 8;
          continue;
        }
        zeros += Math.clz32(byte) - 24;
        break;
      }
      if (zeros >= bits) return String(n);
    }
  }

  async function json(response) {
    try {
      return await response.json();
    } catch (e) {
      return {};
    }
  }

  async function file(event) {
    event.preventDefault();
    const data = new FormData(form);
    const text = String(data.get('text') || '').replace(/\r\n/g, '\n');
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      say('pending', t('Menandatangani laporan di peramban Anda…', 'Signing the report in your browser…'));
      const key = await reporterKey();
      const photos = [];
      const photo = form.querySelector('input[type=file]');
      if (photo && photo.files.length > 0) {
        say('pending', t('Mengunggah foto…', 'Uploading the photo…'));
        const uploaded = await fetch('/api/v1/evidence', { method: 'POST', body: photo.files[0] });
        const answer = await json(uploaded);
        if (!uploaded.ok) throw new Error(t('foto ditolak: ', 'the photo was refused: ') + ((answer.error && answer.error.message) || uploaded.status));
        photos.push(answer.digest);
      }
      const when = data.get('event_at') ? Math.floor(new Date(String(data.get('event_at'))).getTime() / 1000) : null;
      const now = Math.floor(Date.now() / 1000);
      const report = {
        category: String(data.get('category')),
        election: form.dataset.election,
        event_at: Number.isSafeInteger(when) && when > 0 ? when : now,
        filed_at: now,
        photos,
        place: String(data.get('place')),
        reporter: base64(key.publicRaw),
        text_sha256: log.hex(await log.sha256(utf8(text))),
      };
      const contact = String(data.get('contact') || '').trim();
      if (contact) {
        const sealed = await fetch('/api/v1/contact-seal', { method: 'POST', body: contact });
        const answer = await json(sealed);
        if (!sealed.ok) throw new Error(t('kontak ditolak: ', 'the contact details were refused: ') + ((answer.error && answer.error.message) || sealed.status));
        report.contact = answer.contact;
      }
      const message = new Uint8Array([...utf8('saksi/sig/v1/report\n'), ...utf8(canonical(report))]);
      const signature = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, key.privateKey, message));
      const submission = { report, signature: base64(signature), text };
      const intake = await json(await fetch('/api/v1/intake', { cache: 'no-store' }));
      if (intake.pow_bits > 0) {
        say('pending', t('Server meminta bukti kerja (', 'The server asks for proof of work (') + intake.pow_bits + t(' bit) karena banjir laporan; menghitung…', ' bits) under a flood of reports; working…'));
        submission.stamp = await stamp(signature, intake.pow_bits);
      }
      say('pending', t('Mengirim…', 'Sending…'));
      const response = await fetch('/api/v1/reports', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: canonical(submission),
      });
      const answer = await json(response);
      if (!response.ok) {
        const error = answer.error || {};
        throw new Error(t('laporan ditolak (', 'the report was refused (') + response.status + ' ' + (error.code || '') + '): ' + (english ? error.message : error.message_id || error.message) + (error.detail ? ' — ' + error.detail : ''));
      }
      // The entry the log must hold is the report this browser signed, byte for byte.
      const entry = utf8(canonical({ report, signature: base64(signature), type: 'report' }));
      const receipt = String(answer.receipt || '');
      const lines = receipt.split('\n');
      const blank = lines.indexOf('');
      const indexLine = lines.find((l) => l.startsWith('index '));
      if (lines[0] !== 'c2sp.org/tlog-proof@v1' || blank < 0 || !indexLine || Number(indexLine.slice(6)) !== answer.index) {
        throw new Error(t('tanda terima tidak sah', 'the receipt is malformed'));
      }
      const proof = lines.slice(lines.indexOf(indexLine) + 1, blank).map(log.fromBase64);
      const vkey = await log.parseVkey(form.dataset.vkey);
      const checkpoint = await log.checkCheckpoint(lines.slice(blank + 1).join('\n'), vkey);
      const root = await log.rootFromProof(answer.index, checkpoint.size, await log.leafHash(entry), proof);
      if (!root || !log.equal(root, checkpoint.root)) {
        throw new Error(t('tanda terima TIDAK membuktikan laporan ada di log', 'the receipt does NOT prove the report is in the log'));
      }
      outcome.dataset.index = String(answer.index);
      say('verified', t('Laporan tercatat di entri ', 'Report logged at entry ') + answer.index +
        t('; tanda terima diperiksa di peramban ini terhadap kunci log (checkpoint ukuran ', '; its receipt was checked in this browser against the log key (checkpoint size ') + checkpoint.size + ').');
      const pre = document.createElement('pre');
      pre.textContent = receipt;
      outcome.append(pre);
      const save = document.createElement('a');
      save.href = URL.createObjectURL(new Blob(['saksi-secret-key-v1 ' + base64(key.seed) + '\n'], { type: 'text/plain' }));
      save.download = 'saksi-reporter.key';
      save.textContent = t('Simpan kunci pelapor (untuk tindak lanjut: saksi report --key saksi-reporter.key --follows ', 'Save the reporter key (for follow-ups: saksi report --key saksi-reporter.key --follows ') + answer.index + ')';
      outcome.append(save);
      form.reset();
    } catch (e) {
      say('failed', t('GAGAL: ', 'FAILED: ') + (e && e.message ? e.message : String(e)));
    } finally {
      button.disabled = false;
    }
  }

  // Only where this browser signs Ed25519 does the script take over; otherwise the form posts as is.
  crypto.subtle
    .generateKey({ name: 'Ed25519' }, false, ['sign'])
    .then(() => {
      form.addEventListener('submit', file);
      form.dataset.signing = 'browser';
      for (const element of form.querySelectorAll('[data-script-only]')) element.hidden = false;
      for (const element of form.querySelectorAll('[data-without-script]')) element.hidden = true;
    })
    .catch(() => {});
})();
