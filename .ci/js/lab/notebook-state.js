// State of the notebook named `name`: loading, or its kernel's status ('idle', ...).
// Evaluated in the page by .ci/lab_test.py (Playwright's page.evaluate).
(name) => {
  const app = window.jupyterapp; const w = app && app.shell.currentWidget;
  if (!app) return 'no jupyterapp (is --LabApp.expose_app_in_browser set?)';
  if (!w || !w.context || w.context.path !== name) return 'notebook not open';
  if (!w.context.isReady) return 'notebook loading';
  const s = w.sessionContext;
  if (!s || !s.session || !s.session.kernel) return 'no kernel';
  return s.session.kernel.status;
}
