// The waterfall: fold a span's children away (the ▾ button), expand or collapse every span's details.
(function () {
  document.querySelectorAll("button.fold").forEach(function (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();  // the button sits in the row's <summary>: do not also open the details
      event.stopPropagation();
      var children = button.closest(".span").querySelector(":scope > .children");
      var open = button.getAttribute("aria-expanded") === "true";
      children.hidden = open;
      button.setAttribute("aria-expanded", String(!open));
      button.textContent = open ? "▸" : "▾";
    });
  });
  function all(open) {
    document.querySelectorAll(".waterfall details").forEach(function (d) { d.open = open; });
  }
  var expand = document.getElementById("expand-all");
  var collapse = document.getElementById("collapse-all");
  if (expand) expand.addEventListener("click", function () { all(true); });
  if (collapse) collapse.addEventListener("click", function () { all(false); });
})();
