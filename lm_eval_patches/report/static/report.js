// mera-mm report: the sample browser (our own code, no library). Renders one page of the
// filtered samples at a time, so thousands of samples stay fast.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("mera-data").textContent);
  const PAGE = 20;
  const $ = (id) => document.getElementById(id);
  const taskSel = $("filter-task"), skillSel = $("filter-skill"), statusSel = $("filter-status");
  let matches = [], page = 0;

  function option(sel, value, text) {
    const o = document.createElement("option");
    o.value = value; o.textContent = text; sel.appendChild(o);
  }
  [...new Set(data.samples.map((s) => s.task))].sort().forEach((t) => option(taskSel, t, t));
  data.skills.forEach((name, i) => option(skillSel, String(i), name));
  data.runs.forEach((run, i) => {
    option(statusSel, "right:" + i, "right in " + run);
    option(statusSel, "wrong:" + i, "wrong in " + run);
  });
  if (data.runs.length > 1) option(statusSel, "disagree", "runs disagree");

  function keep(s) {
    if (taskSel.value && s.task !== taskSel.value) return false;
    if (skillSel.value && !s.skills.includes(Number(skillSel.value))) return false;
    const st = statusSel.value;
    if (!st) return true;
    if (st === "disagree") return new Set(s.right.filter((v) => v !== null)).size > 1;
    const [want, i] = st.split(":");
    return s.right[Number(i)] === (want === "right" ? 1 : 0);
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function mediaBox(keys) {
    const box = el("div", "media");
    keys.forEach((k) => {
      const m = data.media[k];
      if (!m) return;
      if (m.note) { box.appendChild(el("span", "note", m.kind + ": " + m.note)); return; }
      if (m.kind === "audio") {
        const a = el("audio"); a.controls = true; a.preload = "metadata"; a.src = m.src[0];
        box.appendChild(a);
      } else {
        m.src.forEach((src, j) => {
          const img = el("img"); img.src = src;
          img.alt = m.kind === "video" ? "frame " + (j + 1) : "image";
          box.appendChild(img);
        });
      }
    });
    return box;
  }

  function card(s) {
    const c = el("article", "sample");
    c.dataset.task = s.task; c.dataset.doc = s.doc;
    const h = el("header", null, s.task + " · doc " + s.doc + " ");
    h.appendChild(el("span", "meta", "(prompt ▸)"));
    const prompt = el("pre", "prompt", s.prompt);
    prompt.hidden = true;
    h.title = "click to show the prompt";
    h.addEventListener("click", () => { prompt.hidden = !prompt.hidden; });
    c.appendChild(h);
    c.appendChild(mediaBox(s.media));
    c.appendChild(prompt);
    const t = el("table", "answers");
    const gold = t.insertRow();
    gold.insertCell().textContent = "gold";
    gold.insertCell().textContent = s.gold || "(not public)";
    data.runs.forEach((run, i) => {
      const r = t.insertRow();
      r.className = "answer";
      const v = s.right[i];
      const mark = v === 1 ? "✓" : v === 0 ? "✗" : "–";
      r.insertCell().appendChild(el("span", "mark-" + (v === null ? "n" : v), mark + " " + run));
      r.insertCell().textContent = s.answers[i] === null ? "(not run)" : s.answers[i];
      const j = s.judge[i];
      if (j !== null && j !== undefined) {
        const text = j === 1 ? "judge ✓" : j === 0 ? "judge ✗" : "judge: no verdict";
        r.insertCell().appendChild(el("span", "js judge-" + j, text));
      }
    });
    c.appendChild(t);
    return c;
  }

  function render() {
    const list = $("samples");
    list.replaceChildren();
    const pages = Math.max(1, Math.ceil(matches.length / PAGE));
    page = Math.min(page, pages - 1);
    matches.slice(page * PAGE, (page + 1) * PAGE).forEach((s) => list.appendChild(card(s)));
    $("match-count").textContent = matches.length + " of " + data.samples.length + " samples";
    $("page-info").textContent = "page " + (page + 1) + " of " + pages;
    $("prev").disabled = page === 0;
    $("next").disabled = page >= pages - 1;
  }

  function refilter() { matches = data.samples.filter(keep); page = 0; render(); }
  [taskSel, skillSel, statusSel].forEach((s) => s.addEventListener("change", refilter));
  $("prev").addEventListener("click", () => { page -= 1; render(); });
  $("next").addEventListener("click", () => { page += 1; render(); });
  refilter();
})();
