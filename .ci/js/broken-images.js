// The images that did not load (no pixels), by their source.
// Shared by .ci/_browser.py; evaluated in the page by browser_test.py and make_pdf.py.
() => Array.from(document.images)
  .filter(i => !(i.complete && i.naturalWidth > 0))
  .map(i => (i.currentSrc || i.src || i.outerHTML).slice(0, 120))
