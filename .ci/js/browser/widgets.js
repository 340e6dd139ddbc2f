// The saved ipywidgets views of the page and how many the embedded widget manager
// has not rendered; whether the widget state and require.js are there.
// Evaluated in the page by .ci/browser_test.py (Playwright's page.evaluate).
() => {
  const views = Array.from(document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"]'));
  const unrendered = views.filter(v => {
    const prev = v.previousElementSibling;
    return !(prev && prev.classList.contains('widget-subarea') && prev.childElementCount > 0);
  });
  return {views: views.length, unrendered: unrendered.length,
          state: !!document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]'),
          requirejs: typeof window.requirejs === 'function'};
}
