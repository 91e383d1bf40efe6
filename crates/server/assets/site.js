// saksi: what script adds to pages that work without it: sortable tables, the "/" key to search,
// and live figures (a cheap poll of the checkpoint; the page's figures and rows are updated in
// place when the log grows, keeping the reader's scroll position, sort order and focus).
'use strict';

(function () {
  const english = document.documentElement.lang === 'en';
  const t = (id, en) => (english ? en : id);

  // --- "/" focuses the search box from anywhere ----------------------------------------------------
  document.addEventListener('keydown', (event) => {
    const target = event.target;
    const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement;
    if (event.key === '/' && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      const box = document.getElementById('q');
      if (box) {
        event.preventDefault();
        box.focus();
      }
    }
  });

  // --- sortable tables -----------------------------------------------------------------------------
  // A cell's value for sorting: the number it shows (separators removed), or its text.
  function sortValue(cell) {
    const text = (cell.textContent || '').trim();
    const first = text.split(/[\s/]+/)[0].replace(/[.,%](?=\d{3}\b)/g, '').replace(',', '.').replace('%', '');
    const number = Number(first);
    return text !== '' && !Number.isNaN(number) && /\d/.test(first) ? number : text.toLowerCase();
  }

  function makeSortable(table) {
    const head = table.tHead && table.tHead.rows[0];
    const body = table.tBodies[0];
    if (!head || !body || body.rows.length < 2) return;
    Array.from(head.cells).forEach((th, column) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = th.textContent;
      button.title = t('Urutkan menurut kolom ini', 'Sort by this column');
      th.textContent = '';
      th.appendChild(button);
      button.addEventListener('click', () => {
        const ascending = th.getAttribute('aria-sort') !== 'ascending';
        for (const other of head.cells) other.removeAttribute('aria-sort');
        th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
        const rows = Array.from(body.rows);
        rows.sort((a, b) => {
          const x = sortValue(a.cells[column]);
          const y = sortValue(b.cells[column]);
          const order = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
          return ascending ? order : -order;
        });
        for (const row of rows) body.appendChild(row);
      });
    });
  }
  document.querySelectorAll('table.sortable').forEach(makeSortable);

  // --- live figures --------------------------------------------------------------------------------
  const POLL_MS = 5000;
  const live = document.querySelector('[data-live]');
  if (!live || !window.fetch || !window.DOMParser) return;
  let size = live.dataset.live;
  const status = document.getElementById('live-status');

  async function refresh() {
    const checkpoint = await fetch('/log/checkpoint', { cache: 'no-store' });
    if (!checkpoint.ok) return;
    const newSize = (await checkpoint.text()).split('\n')[1];
    if (!newSize || newSize === size) return;
    const response = await fetch(location.href, { cache: 'no-store' });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), 'text/html');
    // A page the browser checked (a TPS, a desa) is not changed under the check: it says that
    // new entries arrived, and a reload checks them.
    if (document.getElementById('verification')) {
      const entries = (root) =>
        Array.from(root.querySelectorAll('tr[data-index], [data-entry]'), (e) => e.dataset.index || e.dataset.entry).join(' ');
      if (entries(fresh) !== entries(document) && status) {
        status.innerHTML = '';
        const link = document.createElement('a');
        link.href = location.href;
        link.textContent = t('Ada entri baru di log untuk halaman ini: muat ulang untuk memeriksanya', 'New entries for this page are in the log: reload to check them');
        status.appendChild(link);
      }
      size = newSize;
      return;
    }
    // Figures by name, then table rows by their region code, cell by cell.
    for (const element of document.querySelectorAll('[data-figure]')) {
      const match = fresh.querySelector('[data-figure="' + element.dataset.figure + '"]');
      if (match && match.textContent !== element.textContent) element.textContent = match.textContent;
    }
    for (const row of document.querySelectorAll('tr[data-code]')) {
      const match = fresh.querySelector('tr[data-code="' + row.dataset.code + '"]');
      if (!match) continue;
      Array.from(row.cells).forEach((cell, i) => {
        const other = match.cells[i];
        if (other && i > 0 && other.innerHTML !== cell.innerHTML) cell.innerHTML = other.innerHTML;
      });
    }
    for (const element of document.querySelectorAll('[data-live-html]')) {
      const match = fresh.querySelector('[data-live-html="' + element.dataset.liveHtml + '"]');
      if (match && match.innerHTML !== element.innerHTML) element.innerHTML = match.innerHTML;
    }
    size = newSize;
    live.dataset.live = newSize;
    if (status) status.textContent = t('Diperbarui otomatis: log berukuran ', 'Updated live: the log has ') + newSize + t(' entri.', ' entries.');
  }

  function poll() {
    if (!document.hidden) refresh().catch(() => {});
    setTimeout(poll, POLL_MS);
  }
  setTimeout(poll, POLL_MS);
})();
