// Progressive enhancement only: every page works without this file.
// Copy buttons: <button class="copy" data-copy="ELEMENT_ID">.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button.copy");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    var label = button.textContent;
    button.textContent = "Copied";
    button.setAttribute("data-copied", "true");
    setTimeout(function () { button.textContent = label; }, 2000);
  });
});
