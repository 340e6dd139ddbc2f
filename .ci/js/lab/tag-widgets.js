// Marks the output node of every widget view of the notebook (data-lab-test-widget=k),
// from the notebook's model, so that nested outputs (inside Output widgets) never count.
// Evaluated in the page by .ci/lab_test.py (Playwright's page.evaluate).
(mime) => {
  const app = window.jupyterapp; const w = app && app.shell.currentWidget;
  const found = [];
  w.content.widgets.forEach((c, i) => {
    if (c.model.type !== 'code') return;
    const outs = c.model.outputs;
    for (let j = 0; j < outs.length; j++) {
      const data = outs.get(j).data || {};
      if (!(mime in data)) continue;
      const child = c.outputArea.widgets[j];
      const node = child ? child.node.querySelector('.jp-OutputArea-output') : null;
      if (node) node.setAttribute('data-lab-test-widget', String(found.length));
      found.push({cell: i, model: (data[mime] || {}).model_id || '', attached: !!node});
    }
  });
  return found;
}
