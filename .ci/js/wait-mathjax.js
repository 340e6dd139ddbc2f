// Waits (at most `ms` milliseconds) for MathJax's startup typesetting; returns
// 'done', 'absent', 'not-started', 'timeout' or 'error: ...'.
// Shared by .ci/_browser.py; evaluated in the page by browser_test.py and make_pdf.py.
async (ms) => {
  const mj = window.MathJax;
  if (!mj) return 'absent';
  if (!mj.startup || !mj.startup.promise) return 'not-started';
  const timeout = new Promise(r => setTimeout(() => r('timeout'), ms));
  try { return await Promise.race([mj.startup.promise.then(() => 'done'), timeout]); }
  catch (e) { return 'error: ' + e; }
}
