// Loads lazy images now (a full-page screenshot and the checks need every one).
// Shared by .ci/_browser.py; evaluated in the page by browser_test.py and make_pdf.py.
() => {
  for (const img of document.images) { if (img.loading === 'lazy') img.loading = 'eager'; }
}
