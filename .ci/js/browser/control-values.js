// The current value of every bound input of an explorer (to restore them).
// Evaluated in the page by .ci/browser_test.py (Playwright's page.evaluate).
(id) => {
  const out = {};
  for (const el of document.getElementById(id).querySelectorAll('.vega-bind [name]')) {
    if (el.type === 'radio') { if (el.checked) out[el.name] = el.value; }
    else out[el.name] = el.value;
  }
  return out;
}
