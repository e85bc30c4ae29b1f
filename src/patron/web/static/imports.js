// Follow a running import: poll its progress twice a second until it is done or failed.
(function () {
  const box = document.getElementById("import-job");
  if (!box) return;
  const bar = document.getElementById("import-progress");
  const status = document.getElementById("import-status");
  const summary = document.getElementById("import-summary");
  const rejects = document.getElementById("import-rejects");
  async function poll() {
    const reply = await fetch(`/imports/${box.dataset.job}/progress`, { credentials: "same-origin" });
    if (!reply.ok) return;
    const job = await reply.json();
    bar.value = job.share;
    status.textContent = job.status === "running" && job.total
      ? `running: ${job.done.toLocaleString("en-US")} of ${job.total.toLocaleString("en-US")} rows`
      : job.status + (job.error ? `: ${job.error}` : "");
    summary.textContent = job.summary;
    if (job.rejects.length) {
      rejects.hidden = false;
      const body = rejects.querySelector("tbody");
      body.replaceChildren(...job.rejects.map((r) => {
        const row = document.createElement("tr");
        for (const value of [r.line, r.column || "(row)", r.value || "", r.reason]) {
          const cell = document.createElement("td");
          cell.textContent = String(value);
          row.append(cell);
        }
        return row;
      }));
    }
    if (job.status === "done" || job.status === "failed") {
      box.dataset.finished = job.status;
      return;
    }
    setTimeout(poll, 500);
  }
  poll();
})();
