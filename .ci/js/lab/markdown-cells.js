// The markdown cells of the open notebook as JupyterLab rendered them: for each one its
// index, its renderer ('myst': jupyterlab-myst; 'default': JupyterLab's own markdown
// renderer; null: not rendered yet), the start of its source, its rendered text without
// math and code blocks (where MyST syntax may legitimately appear), the languages of
// its code blocks that look like a directive (```{name} shown as a code block: a renderer
// that does not know MyST), and the targets of the references and citations that
// jupyterlab-myst left unresolved (its "Cross Reference Not Found" and "Citation Not
// Found" marks: labels of other chapters, which it cannot see, and references.bib keys).
// Evaluated in the page by .ci/lab_test.py (Playwright's page.evaluate).
() => {
  const app = window.jupyterapp; const w = app && app.shell.currentWidget;
  if (!w || !w.content || !w.content.widgets) return null;
  const cells = [];
  w.content.widgets.forEach((cell, index) => {
    if (cell.model.type !== 'markdown') return;
    const node = cell.node.querySelector(
      '.jp-InputArea > .myst, .jp-InputArea > .jp-RenderedMarkdown');
    const source = cell.model.sharedModel.getSource();
    const entry = {index, renderer: null, rendered: !!cell.rendered,
                   source: source.slice(0, 80), empty: !source.trim(), text: '',
                   fences: [], xrefs: [], cites: []};
    if (node) {
      entry.renderer = node.classList.contains('myst') ? 'myst' : 'default';
      const clone = node.cloneNode(true);
      clone.querySelectorAll('pre, .katex, .katex-display, mjx-container, .MathJax, ' +
                             'script, style, svg').forEach(e => e.remove());
      entry.text = clone.textContent.replace(/\s+/g, ' ').trim();
      entry.fences = Array.from(node.querySelectorAll('pre code[class*="language-{"]'))
        .map(e => e.className);
      entry.xrefs = Array.from(node.querySelectorAll('[title="Cross Reference Not Found"]'))
        .map(e => e.textContent.trim());
      entry.cites = Array.from(node.querySelectorAll('[title="Citation Not Found"]'))
        .map(e => e.textContent.trim());
    }
    cells.push(entry);
  });
  return cells;
}
