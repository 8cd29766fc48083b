// The search results refresh themselves: a trace sent from another terminal appears without a reload.
(function () {
  var results = document.getElementById("results");
  if (!results) return;
  var every = 1000 * Number(results.dataset.liveSeconds || 2);
  // What decides whether the results changed: the search's list of trace ids where it says one (so a trace
  // ticked for comparison stays ticked while the list is the same), else all the text (the Monitor's figures).
  function signature(root) {
    var table = root.querySelector("table[data-signature]");
    return table ? table.dataset.signature : root.textContent.trim();
  }
  function refresh() {
    fetch(results.dataset.src, {headers: {"Accept": "text/html"}})
      .then(function (response) { return response.ok || response.status === 400 ? response.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var fresh = document.createElement("div");
        fresh.innerHTML = html;
        if (signature(fresh) === signature(results)) return;
        var ticked = Array.prototype.map.call(results.querySelectorAll("input[name=trace]:checked"),
                                              function (box) { return box.value; });
        results.innerHTML = html;
        ticked.forEach(function (id) {
          var box = results.querySelector('input[name=trace][value="' + id + '"]');
          if (box) box.checked = true;
        });
      })
      .catch(function () { /* the store stopped: try again later */ })
      .then(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
