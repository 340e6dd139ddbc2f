// Math left untypeset: raw TeX `markers` in the visible text (outside code, scripts
// and rendered math), .math elements without an mjx-container, MathJax errors.
// Evaluated in the page by .ci/browser_test.py (Playwright's page.evaluate).
(markers) => {
  const skip = 'script,style,noscript,pre,code,textarea,mjx-container,.highlight,.MathJax';
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip)) continue;
    const style = window.getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    const t = n.textContent;
    for (const m of markers) {
      const i = t.indexOf(m);
      if (i >= 0) { raw.push(t.slice(Math.max(0, i - 30), i + 50).replace(/\s+/g, ' ')); break; }
    }
  }
  const mathEls = Array.from(document.querySelectorAll('.math'))
    .filter(e => !e.closest('pre,code,.highlight') && !e.parentElement.closest('.math'));
  const untypeset = mathEls.filter(e => !e.querySelector('mjx-container'))
    .map(e => e.textContent.trim().slice(0, 60));
  const errors = Array.from(document.querySelectorAll('mjx-merror'))
    .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 80));
  return {raw: raw.slice(0, 5), nraw: raw.length, nmath: mathEls.length,
          untypeset: untypeset.slice(0, 5), nuntypeset: untypeset.length,
          ncontainers: document.querySelectorAll('mjx-container').length,
          errors: errors.slice(0, 5)};
}
