// Progress of the run, and every error output or stderr stream so far.
// Evaluated in the page by .ci/lab_test.py (Playwright's page.evaluate).
() => {
  const app = window.jupyterapp; const w = app && app.shell.currentWidget;
  const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
  const code = w.content.widgets.map((c, i) => [c, i]).filter(([c]) => c.model.type === 'code');
  const errors = [], stderr = [];
  for (const [c, i] of code) {
    const outs = c.model.outputs;
    for (let j = 0; j < outs.length; j++) {
      const o = outs.get(j).toJSON();
      if (o.output_type === 'error') {
        errors.push(`cell ${i}: ${o.ename}: ${o.evalue}`.slice(0, 300));
      } else if (o.output_type === 'stream' && o.name === 'stderr') {
        const t = (Array.isArray(o.text) ? o.text.join('') : o.text).trim();
        (t.includes('Traceback') ? errors : stderr).push(`cell ${i}: ${t.slice(0, 300)}`);
      }
    }
  }
  return {run: window.__labTestRun || null, kernel: kernel ? kernel.status : 'none',
          cells: code.length, executed: code.filter(([c]) => c.model.executionCount !== null).length,
          running: code.filter(([c]) => c.promptNode && c.promptNode.textContent.includes('*')).length,
          errors, stderr};
}
