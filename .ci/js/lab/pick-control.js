// Chooses the control of widget k to move (a slider, else a dropdown, else toggle
// buttons, else a checkbox; outside its Output widgets), marks it
// data-lab-test-control=k and describes it.
// Evaluated in the page by .ci/lab_test.py (Playwright's page.evaluate).
(k) => {
  const root = document.querySelector(`[data-lab-test-widget="${k}"]`);
  if (!root) return null;
  const mine = e => !e.closest('.widget-output') && !e.disabled && !e.closest('.mod-disabled');
  const kinds = [['slider', '.widget-slider .noUi-handle'], ['dropdown', '.widget-dropdown select'],
                 ['toggle', '.widget-toggle-buttons'], ['checkbox', '.widget-checkbox input']];
  for (const [kind, sel] of kinds) {
    const el = Array.from(root.querySelectorAll(sel)).find(mine);
    if (!el) continue;
    el.setAttribute('data-lab-test-control', String(k));
    const box = el.closest('.widget-inline-hbox, .widget-toggle-buttons, .widget-checkbox');
    const label = box && box.querySelector('.widget-label, label');
    return {kind, label: label ? label.textContent.trim() : '',
            atMax: kind === 'slider' &&
                   el.getAttribute('aria-valuenow') === el.getAttribute('aria-valuemax')};
  }
  return null;
}
