// ringfence dashboard: live fragments over Server-Sent Events. The pages work without it.
// An element with data-live="URL" is re-fetched from URL and swapped in when /ui/events says
// its config changed (data-config, or any config when it has none), and on every tick when
// it has data-tick (every Nth tick with data-tick="N"). Nothing here runs inline: the Content-Security-Policy forbids it.
(function () {
  "use strict";
  if (!window.EventSource || !window.fetch) return;
  var live = function () { return Array.prototype.slice.call(document.querySelectorAll("[data-live]")); };
  if (!live().length) return;
  var busy = {};

  function refresh(element) {
    var url = element.getAttribute("data-live");
    if (busy[url]) return;
    busy[url] = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null || !element.isConnected) return;
        var holder = document.createElement("template");
        holder.innerHTML = html;
        var open = document.activeElement && element.contains(document.activeElement);
        if (!open) {
          element.replaceChildren(holder.content);
          element.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () { /* offline for a moment: the next event tries again */ })
      .then(function () { busy[url] = false; });
  }

  var source = new EventSource("/ui/events");
  source.addEventListener("change", function (event) {
    var config = "";
    try { config = JSON.parse(event.data).config; } catch (e) { return; }
    live().forEach(function (element) {
      var wanted = element.getAttribute("data-config");
      if (!wanted || wanted === config) refresh(element);
    });
  });
  var ticks = 0;
  source.addEventListener("tick", function () {
    ticks += 1;
    live().forEach(function (element) {
      // data-tick="N": every Nth tick (a big fleet table need not be read every two seconds).
      var every = parseInt(element.getAttribute("data-tick"), 10) || 1;
      if (element.hasAttribute("data-tick") && ticks % every === 0) refresh(element);
    });
  });
  window.addEventListener("pagehide", function () { source.close(); });
})();
