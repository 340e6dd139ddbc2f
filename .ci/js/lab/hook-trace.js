// A compact trace of the widget traffic (every comm_msg either way, every message the
// kernel publishes in answer to one), for the report of a failed move, and the time of
// the last such message: a widget has settled when there has been none for a while.
// Evaluated in the page by .ci/lab_test.py (Playwright's page.evaluate).
() => {
  const app = window.jupyterapp; const w = app && app.shell.currentWidget;
  const kernel = w.sessionContext.session.kernel;
  const t0 = performance.now();
  window.__labTestTrace = [];
  window.__labTestCommAt = t0;
  const brief = v => (typeof v === 'number' || typeof v === 'boolean' ||
                      (typeof v === 'string' && v.length < 40)) ? `=${JSON.stringify(v)}` : '';
  kernel.anyMessage.connect((_, args) => {
    const m = args.msg, type = m.header.msg_type, c = m.content || {};
    const parent = (m.parent_header || {}).msg_type || '';
    if (type !== 'comm_msg' && parent !== 'comm_msg') return;
    window.__labTestCommAt = performance.now();
    if (type === 'status') return;
    let detail = '';
    if (type === 'comm_msg') {
      const data = c.data || {}, state = data.state || {};
      detail = `${data.method || ''} ${Object.keys(state).map(k => k + brief(state[k])).join(' ')}`;
    } else if (type === 'display_data' || type === 'execute_result') {
      detail = Object.keys(c.data || {}).join(',');
    } else if (type === 'stream') detail = c.name;
    else if (type === 'clear_output') detail = `wait=${c.wait}`;
    else if (type === 'error') detail = c.ename;
    const t = ((performance.now() - t0) / 1000).toFixed(2);
    // the message's id when sent, the id of the request it answers when received
    const id = (args.direction === 'send' ? m.header.msg_id : (m.parent_header || {}).msg_id) || '';
    const dir = args.direction === 'send' ? '>' : '<';
    window.__labTestTrace.push(`${t} ${dir} [${id.slice(0, 8)}] ${type} ${detail}`.trim());
  });
}
