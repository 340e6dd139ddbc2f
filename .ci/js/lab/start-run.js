// Clears the outputs and starts "Run All Cells"; its promise resolves to false when a
// cell fails (the kernel then skips the rest). The outcome lands in window.__labTestRun.
// Evaluated in the page by .ci/lab_test.py (Playwright's page.evaluate).
async () => {
  const app = window.jupyterapp; const w = app && app.shell.currentWidget;
  app.shell.activateById(w.id);
  await app.commands.execute('notebook:clear-all-cell-outputs');
  window.__labTestRun = {done: false, ok: null, error: null};
  app.commands.execute('notebook:run-all-cells').then(
    ok => { window.__labTestRun = {done: true, ok: ok !== false, error: null}; },
    err => { window.__labTestRun = {done: true, ok: false, error: String(err)}; });
}
