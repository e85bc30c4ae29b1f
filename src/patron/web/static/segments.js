// The segment builder's live count: ask the API as the rule is typed (debounced), show the count or the problem.
(function () {
  const rule = document.getElementById("rule");
  const out = document.getElementById("live-count");
  let timer = null;
  async function count() {
    const text = rule.value.trim();
    if (!text) { out.textContent = "Type a rule to see how many customers it selects."; out.className = "live"; return; }
    out.textContent = "counting…";
    const reply = await fetch("/api/segments/preview", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({rule: text}),
    });
    const body = await reply.json();
    if (reply.ok) {
      out.textContent = body.count.toLocaleString("en") + " of " + body.customers.toLocaleString("en") + " customers match";
      out.className = "live ok";
    } else {
      out.textContent = body.detail;
      out.className = "live error";
    }
  }
  rule.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(count, 300); });
})();
