/* Progressive enhancement of the confirmation page: a Copy button beside the calendar address.
   Everything works without it (the address is in a read-only field to select and copy). */
(function () {
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById("copy-status");
    if (!field || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(field.value).then(function () {
        if (status) status.textContent = "Copied.";
      }, function () {
        field.select();
        if (status) status.textContent = "Press Ctrl+C (or Cmd+C) to copy.";
      });
    });
  });
})();
