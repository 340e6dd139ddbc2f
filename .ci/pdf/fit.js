// With the window as wide as the printed text: shrink each displayed formula or table
// wider than its line, then list what is still wider than the text.
// Evaluated in the page by .ci/make_pdf.py (Playwright's page.evaluate).
() => {
  const book = document.getElementById('lossless-pdf');
  const inner = el => {
    const s = getComputedStyle(el);
    return el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
  };
  let formulas = 0, tables = 0, smallest = 1;
  for (const c of book.querySelectorAll('mjx-container[display="true"]')) {
    const math = c.querySelector('mjx-math');
    if (!math) continue;
    c.style.zoom = '';
    // the formula's own width (MathJax never breaks it) against its room: the
    // container fills the line beside the equation number
    const need = math.getBoundingClientRect().width, have = c.clientWidth - 1;
    if (need > have + 0.5 && have > 0) {
      const z = have / need;
      c.style.zoom = z.toFixed(4);
      formulas += 1; smallest = Math.min(smallest, z);
    }
  }
  for (const t of book.querySelectorAll('table')) {
    if (t.parentElement.closest('table')) continue;
    t.style.zoom = '';
    const need = Math.max(t.getBoundingClientRect().width, t.scrollWidth);
    const have = inner(t.parentElement) - 1;
    if (need > have + 0.5 && have > 0) {
      const z = have / need;
      t.style.zoom = z.toFixed(4);
      tables += 1; smallest = Math.min(smallest, z);
    }
  }
  const box = book.getBoundingClientRect();
  const wide = [];
  const sel = 'mjx-container, table, pre, img, svg, figure, p, li, dl, dd, blockquote, ' +
              '.admonition, .lossless-explorer, .cell_output, div.highlight, div.math';
  for (const el of book.querySelectorAll(sel)) {
    if (el.parentElement.closest('mjx-container')) continue;
    if (!el.getClientRects().length) continue;
    const r = el.getBoundingClientRect();
    if (r.right > box.right + 1 || r.left < box.left - 1) {
      const where = el.closest('section[id]');
      wide.push(`${el.tagName.toLowerCase()} ${Math.round(r.width)}px in #${where ? where.id : '?'}: ` +
                (el.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 60));
    }
  }
  return {formulas, tables, smallest: Math.round(smallest * 100) / 100, wide,
          width: Math.round(box.width)};
}
