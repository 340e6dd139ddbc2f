// What the reader sees: the marks (geometry of every path/symbol, without axes) and
// the printed readout (the explorer's text marks).
// Evaluated in the page by .ci/browser_test.py (Playwright's page.evaluate).
(id) => {
  const svg = document.getElementById(id).querySelector('svg');
  if (!svg) return null;
  const marks = Array.from(svg.querySelectorAll('g.role-mark:not(.role-axis) path'))
    .filter(p => !p.closest('.role-axis, .role-legend'))
    .map(p => (p.getAttribute('d') || '') + (p.getAttribute('transform') || ''));
  const readout = Array.from(svg.querySelectorAll('g.mark-text.role-mark text'))
    .filter(t => !t.closest('.role-axis, .role-legend, .role-title'))
    .map(t => t.textContent).join(' | ');
  let h = 0;
  const joined = marks.join(';');
  for (let i = 0; i < joined.length; i++) h = (h * 31 + joined.charCodeAt(i)) | 0;
  return {marks: marks.length + ':' + h, readout};
}
