// The notebook's entries in JupyterLab's log console: the outputs of the kernel that no
// cell and no Output widget took (e.g. a widget callback's figure that escaped its Output
// widget), and what ipywidgets logs there. null when the log console cannot be reached
// (it is reached through the application's plugin registry, which is not a public API).
// Evaluated in the page by .ci/lab_test.py (Playwright's page.evaluate).
async (name) => {
  const app = window.jupyterapp;
  const registry = app.pluginRegistry || app;
  const plugins = registry._plugins;
  const plugin = plugins && plugins.get('@jupyterlab/logconsole-extension:plugin');
  if (!plugin || !plugin.provides || !app.resolveRequiredService) return null;
  const loggers = await app.resolveRequiredService(plugin.provides);
  const logger = loggers.getLogger(name);
  return logger.outputAreaModel.toJSON().map(o => {
    const what = o.output_type === 'stream' ? `${o.name}: ${String(o.text).trim()}`
      : o.output_type === 'error' ? `${o.ename}: ${o.evalue}`
      : o.output_type === 'display_data' || o.output_type === 'execute_result'
        ? `${Object.keys(o.data || {}).join(',')} ${String((o.data || {})['text/plain'] || '')}`
      : JSON.stringify(o);
    return `(${o.level || '?'}) ${o.output_type}: ${what}`.slice(0, 300);
  });
}
