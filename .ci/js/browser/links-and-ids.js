// Every link of the page (absolute URLs) and every anchor it defines.
// Evaluated in the page by .ci/browser_test.py (Playwright's page.evaluate).
() => ({
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  ids: Array.from(document.querySelectorAll('[id],a[name]')).map(e => e.id || e.name),
})
