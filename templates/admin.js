// Progressive enhancement only: every page works without this file.
// Copy buttons: <button class="copy" data-copy="ELEMENT_ID"> copy that element's text.
function portcullisCopied(button) {
  var label = button.textContent;
  button.textContent = "Copied";
  button.setAttribute("data-copied", "true");
  setTimeout(function () { button.textContent = label; }, 2000);
}

function portcullisCopyFallback(text, button) {
  var area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "absolute";
  area.style.left = "-9999px";
  document.body.appendChild(area);
  area.select();
  var ok = false;
  try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
  document.body.removeChild(area);
  if (ok) portcullisCopied(button);
}

document.addEventListener("click", function (event) {
  var button = event.target.closest("button.copy");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source) return;
  var text = source.textContent.trim();
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(text).then(
      function () { portcullisCopied(button); },
      function () { portcullisCopyFallback(text, button); }
    );
  } else {
    portcullisCopyFallback(text, button);
  }
});
