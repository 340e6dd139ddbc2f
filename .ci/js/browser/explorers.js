// The client-side explorers (.lossless-explorer, from lossless.explore): id, whether
// vega-embed rendered it, and the controls to move (data-controls).
// Evaluated in the page by .ci/browser_test.py (Playwright's page.evaluate).
() => Array.from(document.querySelectorAll('.lossless-explorer')).map(e => ({
  id: e.id, rendered: e.getAttribute('data-rendered') === 'true',
  controls: JSON.parse(e.getAttribute('data-controls') || '[]')}))
