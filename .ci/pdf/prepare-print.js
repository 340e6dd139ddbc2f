// Run in the page before printing: the frame left out, the title page, the notes after
// the explorers and saved widget views, solutions unfolded.
// Evaluated in the page by .ci/make_pdf.py (Playwright's page.evaluate).
(args) => {
  const book = document.createElement('main');
  book.id = 'lossless-pdf';
  for (const sel of ['#jb-print-docs-body', 'article.bd-article']) {
    const el = document.querySelector(sel);
    if (el) book.appendChild(el);
  }
  document.body.appendChild(book);
  const h1 = book.querySelector('#jb-print-docs-body h1');
  if (h1 && !book.querySelector('.lossless-pdf-byline')) {
    const by = document.createElement('p');
    by.className = 'lossless-pdf-byline';
    by.textContent = args.author;
    const ed = document.createElement('p');
    ed.className = 'lossless-pdf-edition';
    ed.textContent = args.edition;
    h1.insertAdjacentElement('afterend', by);
    by.insertAdjacentElement('afterend', ed);
  }
  const note = (el, text) => {
    const next = el.nextElementSibling;
    if (next && next.classList.contains('lossless-print-note')) return 0;
    const p = document.createElement('p');
    p.className = 'lossless-print-note';
    p.textContent = text;
    el.insertAdjacentElement('afterend', p);
    return 1;
  };
  let explorers = 0, widgets = 0;
  for (const el of book.querySelectorAll('.lossless-explorer')) explorers += note(el, args.explorer);
  // a saved ipywidgets view: the manager renders it into the element before its script
  for (const s of book.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')) {
    const view = s.previousElementSibling || s.parentElement;
    widgets += note(s.closest('.cell_output .output, .output') || view, args.widget);
  }
  let unfolded = 0;
  for (const el of book.querySelectorAll('.toggle.toggle-hidden')) {
    el.classList.remove('toggle-hidden');
    unfolded += 1;
  }
  for (const d of book.querySelectorAll('details:not(.hide)')) d.open = true;
  return {explorers, widgets, unfolded};
}
