// What widget k's output area shows: a hash of its HTML, one per image (base64 PNG of
// a matplotlib figure), the printed text, and any traceback or other stderr.
// Evaluated in the page by .ci/lab_test.py (Playwright's page.evaluate).
(k) => {
  const root = document.querySelector(`[data-lab-test-widget="${k}"]`);
  if (!root) return null;
  const areas = Array.from(root.querySelectorAll('.widget-output'))
    .filter(a => !a.parentElement.closest('.widget-output'));
  const hash = s => { let h = 0; for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0; return h; };
  const images = [], text = [], errors = [], stderr = [];
  for (const a of areas) {
    for (const img of a.querySelectorAll('img')) images.push(img.src.length + ':' + hash(img.src));
    for (const t of a.querySelectorAll('.jp-RenderedText')) {
      const s = t.textContent.trim();
      if (t.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr') {
        (/Traceback|Error/.test(s) ? errors : stderr).push(s.slice(0, 400));
      } else text.push(s);
    }
  }
  return {areas: areas.length, html: hash(areas.map(a => a.innerHTML).join('\n')),
          images, text: text.join('\n'), errors, stderr};
}
