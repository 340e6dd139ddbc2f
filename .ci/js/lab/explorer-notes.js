// The client-side explorers of lossless.explore, and the note each one shows.
// Evaluated in the page by .ci/lab_test.py (Playwright's page.evaluate).
() => Array.from(document.querySelectorAll('.lossless-explorer')).map(e => {
  const note = e.querySelector('.lossless-explorer-note');
  return {id: e.id, note: note ? note.textContent : ''};
})
