// sslbench report: sortable tables and a check that every image loaded. No framework.
document.querySelectorAll("table.sortable thead th").forEach((th) => {
  th.addEventListener("click", () => {
    const body = th.closest("table").tBodies[0];
    const col = th.cellIndex;
    const up = th.dataset.sort !== "up";
    th.closest("tr").querySelectorAll("th").forEach((h) => delete h.dataset.sort);
    th.dataset.sort = up ? "up" : "down";
    const key = (tr) => {
      const c = tr.cells[col];
      return c ? (c.dataset.v ?? c.textContent.trim()) : "";
    };
    const blank = (s) => s === "" || s === "–";
    const num = (s) => (blank(s) ? -Infinity : Number(s));
    const rows = Array.from(body.rows);
    const numeric = rows.every((tr) => blank(key(tr)) || !isNaN(Number(key(tr))));
    rows.sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      const d = numeric ? num(x) - num(y) : x.localeCompare(y);
      return up ? d : -d;
    });
    rows.forEach((tr) => body.appendChild(tr));
  });
});
window.addEventListener("load", () => {
  let broken = 0;
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) {
      img.classList.add("broken");
      img.dataset.broken = "1";
      broken += 1;
    }
  }
  document.body.dataset.images = `${document.images.length - broken} of ${document.images.length} loaded`;
  document.body.dataset.broken = String(broken);
});
