// Loaded on pages with saved ipywidgets views, before the widget manager
// (nb_ipywidgets_js in _config.yml); copied to _build/html/_static/offline/ by `make assets`.
(function () {
  "use strict";
  // The manager (embed-amd.js) loads its Font Awesome files from the folder of its
  // AMD module "@jupyter-widgets/html-manager/dist/libembed-amd", which require.js
  // would resolve against the page (404s). Map that module path to html-manager/ here
  // through require.js's global config object (read when require.js loads, next).
  var here = document.currentScript && document.currentScript.src;
  if (here && typeof window.require === "undefined") {
    var folder = new URL("html-manager/", here).href;
    window.__jupyter_widgets_assets_path__ = folder;
    window.require = {paths: {"@jupyter-widgets/html-manager/dist": folder.replace(/\/$/, "")}};
  }
  // ipywidgets 8 typesets widget labels with the MathJax 2 API (MathJax.Hub.Queue);
  // the book loads MathJax 3. Give it a MathJax 2-style queue before the widgets
  // render (they render on window load; deferred MathJax has run by DOMContentLoaded).
  window.addEventListener("DOMContentLoaded", function () {
    var mj = window.MathJax;
    if (!mj || mj.Hub || !mj.startup || !mj.startup.promise) {
      return;
    }
    mj.Hub = {
      Queue: function () {
        var elements = [];
        for (var i = 0; i < arguments.length; i++) {
          var job = arguments[i];
          if (Array.isArray(job) && job[0] === "Typeset" && job[2]) {
            elements.push(job[2]);
          }
        }
        mj.startup.promise
          .then(function () { return mj.typesetPromise(elements); })
          .catch(function (err) { console.warn("MathJax typeset of a widget label failed:", err); });
      },
    };
  });
})();
