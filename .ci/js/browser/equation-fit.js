// Does every display equation fit the text column, at the current window width? Run
// after MathJax has typeset. For each display equation (MathJax v3 CHTML,
// `mjx-container[display="true"]`): its rendered width (the container's scrollWidth,
// what MathJax drew) against the width it has (the container's clientWidth: the theme's
// div.math is a flex row of the equation and its number, each equation scrolls in its
// own box), and its box's right edge against the right edge of the article column's
// content. Closed <details> are opened for the measurement (and closed again), so the
// equations of folded sections count too. An equation that overflows is `scrollable`
// when it, or an ancestor inside the column, scrolls horizontally (overflow-x auto or
// scroll) and that box itself ends inside the column: nothing hidden without a scroll bar.
// Also the code blocks (`div.highlight pre`) that are wider than their box (those of
// code cells' inputs apart), and whether the sidebar's site title shows whole.
// Evaluated in the page by .ci/browser_test.py (Playwright's page.evaluate).
() => {
  const column = document.querySelector('article.bd-article') ||
    document.querySelector('main') || document.body;
  const closed = Array.from(document.querySelectorAll('details:not([open])'));
  closed.forEach(d => { d.open = true; });
  const colRect = column.getBoundingClientRect();
  const colStyle = window.getComputedStyle(column);
  const colRight = colRect.right - parseFloat(colStyle.paddingRight || '0');
  const colWidth = column.clientWidth - parseFloat(colStyle.paddingLeft || '0') -
    parseFloat(colStyle.paddingRight || '0');
  const items = (window.MathJax && MathJax.startup && MathJax.startup.document &&
    MathJax.startup.document.getMathItemsWithin) ? MathJax.startup.document : null;
  const tex = el => {
    try {
      const found = items ? items.getMathItemsWithin(el) : [];
      if (found.length) return String(found[0].math).replace(/\s+/g, ' ').trim();
    } catch (e) { /* fall back to the text */ }
    return el.textContent.replace(/\s+/g, ' ').trim();
  };
  const scroller = el => {  // the box, from el up to the column, that scrolls in x
    for (let a = el; a && a !== column.parentElement; a = a.parentElement) {
      const ox = window.getComputedStyle(a).overflowX;
      if (ox === 'auto' || ox === 'scroll') return a;
      if (ox === 'hidden' || ox === 'clip') return null;  // clipped before any scroll
    }
    return null;
  };
  const equations = Array.from(document.querySelectorAll('mjx-container[display="true"]'));
  const over = [];
  let hidden = 0;
  for (const c of equations) {
    const rect = c.getBoundingClientRect();
    if (!rect.width && !rect.height) { hidden += 1; continue; }
    const mathEl = c.querySelector('mjx-math') || c;
    const drawn = Math.max(c.scrollWidth, mathEl.getBoundingClientRect().width);
    const overflow = Math.round(drawn - c.clientWidth);   // wider than its own box
    const pastColumn = Math.round(rect.right - colRight);  // the box sticks out
    if (overflow <= 1 && pastColumn <= 1) continue;
    const block = c.closest('div.math, .math') || c.parentElement;
    const eqno = block && block.querySelector('.eqno');
    const s = scroller(c);
    const scrollable = !!s && s.getBoundingClientRect().right <= colRight + 1;
    const section = c.closest('section[id]');
    over.push({id: (block && block.id) || '',
               number: eqno ? eqno.textContent.replace('#', '').trim() : '',
               section: section ? section.id : '',
               overflow: Math.max(overflow, pastColumn), drawn: Math.round(drawn),
               available: Math.round(c.clientWidth), scrollable,
               tex: tex(c).slice(0, 90)});
  }
  const code = Array.from(document.querySelectorAll('div.highlight pre'))
    .filter(p => p.getClientRects().length && p.scrollWidth - p.clientWidth > 1);
  const codeCells = code.filter(p => p.closest('.cell_input, .cell .highlight'));
  const codeInputs = code.filter(p => p.closest('.cell_input'));
  // The site title in the sidebar: every line of it shown, nothing clipped.
  const brand = document.querySelector('.navbar-brand .logo__title, .navbar-brand');
  let title = null;
  if (brand && brand.getClientRects().length) {
    const r = brand.getBoundingClientRect();
    const clipped = brand.scrollWidth - brand.clientWidth > 1 ||
      brand.scrollHeight - brand.clientHeight > 1 ||
      window.getComputedStyle(brand).textOverflow === 'ellipsis' && brand.scrollWidth > brand.clientWidth;
    const visible = r.right <= window.innerWidth + 1 && r.left >= -1;
    title = {text: brand.textContent.replace(/\s+/g, ' ').trim(), clipped, visible,
             width: Math.round(r.width), height: Math.round(r.height)};
  }
  closed.forEach(d => { d.open = false; });
  return {viewport: window.innerWidth, column: Math.round(colWidth),
          equations: equations.length, hidden, overflowing: over,
          code: code.length, codeCells: codeCells.length, codeInputs: codeInputs.length,
          codeInputExamples: codeInputs.slice(0, 3).map(p => ({
            overflow: p.scrollWidth - p.clientWidth,
            line: (p.textContent.split('\n').reduce((a, b) => (b.length > a.length ? b : a), ''))
              .trim().slice(0, 80)})),
          title,
          codeExamples: code.slice(0, 3).map(p => ({
            overflow: p.scrollWidth - p.clientWidth,
            line: (p.textContent.split('\n').reduce((a, b) => (b.length > a.length ? b : a), ''))
              .trim().slice(0, 80)}))};
}
