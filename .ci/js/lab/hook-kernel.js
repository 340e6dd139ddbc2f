// Records every error and stderr message the kernel publishes (window.__labTestIopub),
// with the type of the request it answers: a widget callback's exception comes in
// answer to a comm_msg, whether it is shown in an Output widget or only in
// JupyterLab's log console (an observe() callback that raises outside an Output).
// Also records each clear_output answering a comm_msg: one per redraw of an Output.
// Evaluated in the page by .ci/lab_test.py (Playwright's page.evaluate).
() => {
  const app = window.jupyterapp; const w = app && app.shell.currentWidget;
  const kernel = w.sessionContext.session.kernel;
  window.__labTestIopub = [];
  kernel.iopubMessage.connect((_, msg) => {
    const type = msg.header.msg_type, c = msg.content;
    const parent = (msg.parent_header || {}).msg_type || '';
    const log = (error, text) => window.__labTestIopub.push(
      {parent, error, text, clear: type === 'clear_output'});
    if (type === 'error') log(true, `${c.ename}: ${c.evalue}`);
    else if (type === 'stream' && c.name === 'stderr') {
      log(/Traceback|Exception|Error/.test(c.text), c.text.trim().slice(-400));
    } else if (type === 'clear_output' && parent === 'comm_msg') log(false, '');
  });
}
