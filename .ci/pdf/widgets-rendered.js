// Every saved ipywidgets view rendered: the embedded widget manager draws it into the
// element before its script.
// Evaluated in the page by .ci/make_pdf.py (Playwright's page.wait_for_function).
() => Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'))
  .every(v => v.previousElementSibling && v.previousElementSibling.childElementCount > 0)
