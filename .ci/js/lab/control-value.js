// The value the chosen control of widget k shows.
// Evaluated in the page by .ci/lab_test.py (Playwright's page.evaluate).
(k) => {
  const el = document.querySelector(`[data-lab-test-control="${k}"]`);
  if (!el) return null;
  if (el.classList.contains('noUi-handle')) {
    const box = el.closest('.widget-slider');
    const readout = box && box.querySelector('.widget-readout');
    return readout ? readout.textContent.trim() : el.getAttribute('aria-valuetext');
  }
  if (el.tagName === 'SELECT') return el.options[el.selectedIndex] ? el.options[el.selectedIndex].text : '';
  if (el.type === 'checkbox') return String(el.checked);
  const on = el.querySelector('.mod-active');
  return on ? on.textContent.trim() : '';
}
