// The title page's contents: the page of each entry (from the first print's named
// destinations), right-aligned.
// Evaluated in the page by .ci/make_pdf.py (Playwright's page.evaluate).
(pages) => {
  let n = 0;
  for (const a of document.querySelectorAll('#jb-print-toc a[href^="#"]')) {
    const page = pages[decodeURIComponent(a.getAttribute('href').slice(1))];
    if (page === undefined) continue;
    let span = a.querySelector('.lossless-toc-page');
    if (!span) { span = document.createElement('span'); span.className = 'lossless-toc-page'; a.appendChild(span); }
    span.textContent = String(page);
    n += 1;
  }
  return n;
}
