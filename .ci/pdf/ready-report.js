// Before printing: the math typeset (or not), MathJax errors, explorers rendered.
// Evaluated in the page by .ci/make_pdf.py (Playwright's page.evaluate).
() => ({
  math: document.querySelectorAll('.math').length,
  untypeset: Array.from(document.querySelectorAll('.math'))
    .filter(e => !e.closest('pre,code,.highlight') && !e.parentElement.closest('.math'))
    .filter(e => !e.querySelector('mjx-container')).length,
  mathErrors: Array.from(document.querySelectorAll('mjx-merror'))
    .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 80)),
  explorers: document.querySelectorAll('.lossless-explorer').length,
  explorersRendered: document.querySelectorAll('.lossless-explorer[data-rendered="true"]').length,
})
