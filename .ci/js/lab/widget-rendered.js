// Whether widget k is rendered by the widget manager, and what it shows otherwise.
// Evaluated in the page by .ci/lab_test.py (Playwright's page.evaluate).
(k) => {
  const root = document.querySelector(`[data-lab-test-widget="${k}"]`);
  if (!root) return {ok: false, why: 'output node gone'};
  const text = root.textContent.trim();
  const views = root.querySelectorAll('.jupyter-widgets').length;
  const bad = /Loading widget|Error displaying widget|Error rendering/.test(text);
  return {ok: views > 0 && !bad, views, mime: root.getAttribute('data-mime-type'),
          text: text.slice(0, 160)};
}
