// The headings as Chromium's outline lists them (h1-h6 and role=heading, rendered, in
// document order), with a clean title (no "#" link, math as its text) and the level
// they get in the rebuilt outline: the title page on top, the introduction's sections
// under it, then every chapter and back-matter page at the top with its sections
// below; the title page's "Contents" headings are left out (level null).
// Evaluated in the page by .ci/make_pdf.py (Playwright's page.evaluate).
() => {
  const first = document.querySelector('#lossless-pdf span[id^="document-"]');
  const titleBlock = document.getElementById('jb-print-docs-body');
  return Array.from(document.querySelectorAll(
      '#lossless-pdf :is(h1, h2, h3, h4, h5, h6, [role="heading"])'))
    .filter(h => h.getClientRects().length > 0)
    .map(h => {
      const c = h.cloneNode(true);
      c.querySelectorAll('.headerlink, .lossless-toc-page').forEach(e => e.remove());
      c.querySelectorAll('mjx-container').forEach(m => {
        const mml = m.querySelector('mjx-assistive-mml');
        m.replaceWith(document.createTextNode(mml ? mml.textContent : ''));
      });
      const text = c.textContent.replace(/\s+/g, ' ').trim();
      const tag = /^H[1-6]$/.test(h.tagName) ? Number(h.tagName[1])
        : Number(h.getAttribute('aria-level') || 2);
      let level;
      if (titleBlock && titleBlock.contains(h)) level = h.tagName === 'H1' ? 0 : null;
      else if (!first || (first.compareDocumentPosition(h) & Node.DOCUMENT_POSITION_PRECEDING))
        level = tag - 1;   // the introduction: its h2 sections under the title
      else level = tag - 2;  // chapters are h2
      return {text, level};
    });
}
