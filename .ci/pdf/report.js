// What the printed page shows, for the check of the PDF.
// Evaluated in the page by .ci/make_pdf.py (Playwright's page.evaluate).
() => {
  const book = document.getElementById('lossless-pdf');
  const shown = e => e.getClientRects().length > 0;
  const text = e => { const c = e.cloneNode(true);
    c.querySelectorAll('.headerlink').forEach(h => h.remove());
    return c.textContent.replace(/\s+/g, ' ').trim(); };
  return {
    images: Array.from(book.querySelectorAll('img')).filter(shown).length,
    explorers: book.querySelectorAll('.lossless-explorer').length,
    widgetViews: book.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
    notes: Array.from(book.querySelectorAll('.lossless-print-note')).map(text),
    // numbered things, with the id a cross-reference leads to: equations "(1.3)",
    // figures, tables, definitions, theorems, exercises ("Fig. 1.1", "Definition 1.1")
    targets: Array.from(book.querySelectorAll('span.eqno, .caption-number')).filter(shown)
      .map(e => ({label: text(e), id: (e.parentElement.closest('[id]') || {}).id || null})),
    internalLinks: Array.from(book.querySelectorAll('a[href^="#"]')).filter(shown).length,
    chapters: document.querySelectorAll('span[id^="document-"]').length,
  };
}
