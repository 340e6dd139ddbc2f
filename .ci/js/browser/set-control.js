// Sets one control of an explorer as a reader would: the input's value, then the DOM
// event vega's bindings listen to. Returns false when no such input/option exists.
// Evaluated in the page by .ci/browser_test.py (Playwright's page.evaluate).
([id, name, value]) => {
  const root = document.getElementById(id);
  const inputs = Array.from(root.querySelectorAll(`[name="${name}"]`));
  if (!inputs.length) return false;
  const el = inputs[0];
  if (el.type === 'radio') {
    const r = inputs.find(i => String(i.value) === String(value));
    if (!r) return false;
    r.checked = true;
    r.dispatchEvent(new Event('change', {bubbles: true}));
    r.dispatchEvent(new Event('click', {bubbles: true}));
    return true;
  }
  if (el.tagName === 'SELECT' &&
      !Array.from(el.options).some(o => String(o.value) === String(value))) return false;
  el.value = String(value);
  el.dispatchEvent(new Event('input', {bubbles: true}));
  el.dispatchEvent(new Event('change', {bubbles: true}));
  return true;
}
