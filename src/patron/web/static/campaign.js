// Live monitoring: refresh the contact and response counts every five seconds while the page is open.
(function () {
  const box = document.getElementById("live");
  if (!box) return;
  const key = box.dataset.campaign;
  const describe = (counts, empty) => {
    const parts = Object.entries(counts).map(([name, n]) => `${name} ${n.toLocaleString("en-US")}`);
    return parts.length ? parts.join(", ") : empty;
  };
  async function refresh() {
    try {
      const reply = await fetch(`/api/campaigns/${encodeURIComponent(key)}/live`, { credentials: "same-origin" });
      if (!reply.ok) return;
      const live = await reply.json();
      document.getElementById("live-status").textContent = live.status;
      document.getElementById("live-contacts").textContent = describe(live.contacts, "none planned (an imported campaign)");
      document.getElementById("live-responses").textContent = describe(live.responses, "none yet");
      box.dataset.refreshed = String(Date.now());
    } catch (error) {
      /* the next tick tries again */
    }
  }
  setInterval(refresh, 5000);
})();
