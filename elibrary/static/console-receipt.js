// The receipt act's processing table (R8): a barcode scanner types the code and Enter, like a
// keyboard. Enter in a barcode cell goes on to the next row's barcode instead of sending the
// form, so a pile of books is scanned one after another; the button sends the table at once.
"use strict";
(function () {
  const cells = Array.from(document.querySelectorAll("#to-process input.scan-barcode"));
  cells.forEach(function (cell, n) {
    cell.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") return;
      event.preventDefault();
      const next = cells[n + 1];
      if (next) next.focus();
      else document.querySelector("#process-batch button[type=submit]").focus();
    });
  });
  if (cells.length) {
    const empty = cells.find(function (c) { return !c.value; });
    if (empty && !document.getElementById("error")) empty.focus();
  }
})();
