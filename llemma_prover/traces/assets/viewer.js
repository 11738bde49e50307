// llemma-prover run viewer: sortable theorem table + interactive search-tree graph (SVG).
// Self-contained: no libraries, no network. Every string from the run is inserted with textContent,
// never as HTML (tactics and errors come from a model and a prover: untrusted).
(function () {
  "use strict";

  // The run is embedded either as plain JSON or (large runs) as base64 of gzipped JSON, which the
  // browser's own DecompressionStream unpacks: still no network and no library.
  async function loadData() {
    const plain = document.getElementById("run-data");
    if (plain) return JSON.parse(plain.textContent);
    const b64 = document.getElementById("run-data-gz").textContent.trim();
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }

  loadData().then(start).catch((err) => {
    document.getElementById("run-summary").textContent = "could not read the embedded run: " + err;
    document.body.setAttribute("data-ready", "error");
  });

  function start(DATA) {
    const S = DATA.strings;
    const SVGNS = "http://www.w3.org/2000/svg";
    const NODE_W = 250, STATE_H = 58, LEAF_H = 40, GAP_X = 230, GAP_Y = 12, PAD = 14;
    const AUTO_OPEN_ERRORS = 4;
    const ERROR_OUTCOMES = new Set(["error", "timeout", "rejected", "prover_error"]);

    const $ = (id) => document.getElementById(id);
    const tbody = document.querySelector("#theorems tbody");
    const filterInput = $("filter"), statusFilter = $("status-filter");
    const svg = $("graph"), details = $("details"), treeHeader = $("tree-header");

    let sortKey = "name", sortDir = 1;
    let cur = null; // the open theorem: {thm, nodes, out, proofEdges, proofNodes}
    let view = { collapsed: new Set(), errors: new Map(), proofOnly: false, zoom: 1, selected: null };

    function el(tag, attrs, text) {
      const e = document.createElement(tag);
      if (attrs) for (const k in attrs) e.setAttribute(k, attrs[k]);
      if (text !== undefined && text !== null) e.textContent = String(text);
      return e;
    }
    function sv(tag, attrs, text) {
      const e = document.createElementNS(SVGNS, tag);
      if (attrs) for (const k in attrs) e.setAttribute(k, attrs[k]);
      if (text !== undefined && text !== null) e.textContent = String(text);
      return e;
    }
    function num(x, d) { return x === null || x === undefined ? "?" : Number(x).toFixed(d); }
    function clip(s, n) { s = String(s); return s.length <= n ? s : s.slice(0, n - 1) + "\u2026"; }
    function oneLine(s) { return String(s).replace(/\s+/g, " ").trim(); }
    function errorHead(s) {
      const lines = String(s).split("\n").map(oneLine).filter((l) => l && !/^toplevel input|^> /i.test(l));
      return lines.length ? lines[0] : oneLine(s);
    }

    // ------------------------------------------------------------------ table
    function renderSummary() {
      const r = DATA.run, th = DATA.theorems;
      const solved = th.filter((t) => t.status === "proved").length;
      const rate = th.length ? (100 * solved / th.length).toFixed(2) : "0.00";
      const parts = [`${solved}/${th.length} solved (${rate}%)`, `split ${r.split}`, `backend ${r.backend}`];
      if (r.generator) parts.push(`generator ${r.generator}`);
      if (r.imported_from) parts.push(`imported from ${r.imported_from}`);
      $("run-summary").textContent = parts.join(" \u00b7 ");
    }

    function cmp(a, b) {
      if (a === b) return 0;
      if (a === null || a === undefined) return 1;
      if (b === null || b === undefined) return -1;
      if (typeof a === "number" && typeof b === "number") return a - b;
      return String(a).localeCompare(String(b));
    }

    function renderTable() {
      const q = filterInput.value.toLowerCase().trim(), st = statusFilter.value;
      const rows = DATA.theorems.filter((t) => (!st || t.status === st) &&
        (!q || `${t.name} ${t.family} ${t.reason}`.toLowerCase().includes(q)));
      rows.sort((a, b) => cmp(a[sortKey], b[sortKey]) * sortDir || cmp(a.name, b.name));
      const frag = document.createDocumentFragment();
      for (const t of rows) {
        const tr = el("tr", { "data-theorem": t.name, "data-status": t.status });
        if (cur && cur.thm.name === t.name) tr.classList.add("selected");
        tr.title = t.family;
        tr.append(el("td", null, t.name),
          el("td", { class: "st-" + t.status }, t.status), el("td", null, t.reason),
          el("td", { class: "num" }, t.expansions), el("td", { class: "num" }, t.nodes),
          el("td", { class: "num" }, num(t.time, 1)), el("td", { class: "num" }, num(t.model, 1)),
          el("td", { class: "num" }, num(t.prover, 1)));
        tr.addEventListener("click", () => openTheorem(t.name));
        frag.append(tr);
      }
      tbody.replaceChildren(frag);
      $("count").textContent = `${rows.length} / ${DATA.theorems.length}`;
      document.querySelectorAll("#theorems th").forEach((th) => {
        th.classList.remove("sorted-asc", "sorted-desc");
        if (th.dataset.key === sortKey) th.classList.add(sortDir > 0 ? "sorted-asc" : "sorted-desc");
      });
    }

    document.querySelectorAll("#theorems th").forEach((th) => th.addEventListener("click", () => {
      const k = th.dataset.key;
      if (k === sortKey) sortDir = -sortDir;
      else { sortKey = k; sortDir = ["name", "family", "status", "reason"].includes(k) ? 1 : -1; }
      renderTable();
    }));
    filterInput.addEventListener("input", renderTable);
    statusFilter.addEventListener("change", renderTable);

    // ------------------------------------------------------------------ trace model
    function prepare(thm) {
      const tr = DATA.traces[thm.trace];
      const nodes = new Map(), out = new Map();
      for (const n of tr.nodes) {
        nodes.set(n[0], { id: n[0], goals: S[n[1]], status: n[2], depth: n[3], priority: n[4],
          expanded_at: n[5], terminal: !!n[6] });
      }
      for (const e of tr.edges) {
        const edge = { s: e[0], t: e[1], tactic: S[e[2]], score: e[3], outcome: e[4], elapsed: e[5],
          order: e[6], error: e[7] >= 0 ? S[e[7]] : "" };
        if (!out.has(edge.s)) out.set(edge.s, []);
        out.get(edge.s).push(edge);
      }
      for (const list of out.values()) list.sort((a, b) => a.order - b.order);
      const pn = tr.proof_nodes || [];
      const proofEdges = new Set();
      for (let i = 0; i + 1 < pn.length; i++) proofEdges.add(pn[i] + "-" + pn[i + 1]);
      return { thm, tr, nodes, out, proofEdges, proofNodes: new Set(pn) };
    }

    function errorsOpen(key, count) {
      return view.errors.has(key) ? view.errors.get(key) : count <= AUTO_OPEN_ERRORS;
    }

    // The displayed tree: state nodes nested along tree edges; duplicates as references; failed
    // attempts either listed (error leaves) or folded into one "group" node per state.
    function buildView() {
      const visited = new Set();
      function mk(id, edge) {
        const n = cur.nodes.get(id);
        const v = { kind: "state", id, edge, children: [], key: "n" + id, node: n, hidden: 0 };
        visited.add(id);
        const edges = cur.out.get(id) || [];
        if (view.collapsed.has(v.key)) { v.hidden = edges.length; return v; }
        const errs = [];
        for (const e of edges) {
          if (ERROR_OUTCOMES.has(e.outcome)) { errs.push(e); continue; }
          const onProof = cur.proofEdges.has(e.s + "-" + e.t);
          if (view.proofOnly && !onProof) continue;
          if (e.outcome === "duplicate" || visited.has(e.t) || !cur.nodes.has(e.t)) {
            v.children.push({ kind: "dup", id: e.t, edge: e, children: [], key: "d" + e.order });
          } else {
            v.children.push(mk(e.t, e));
          }
        }
        if (errs.length && !view.proofOnly) {
          const gkey = "g" + id;
          const open = errorsOpen(gkey, errs.length);
          if (open) {
            for (const e of errs) {
              v.children.push({ kind: "err", id: e.t, edge: e, children: [], key: "n" + e.t, node: cur.nodes.get(e.t) });
            }
          }
          v.children.push({ kind: "group", id, edge: null, children: [], key: gkey, errs, open });
        }
        return v;
      }
      return mk(rootId(), null);
    }

    function rootId() { return cur.nodes.has(0) ? 0 : Math.min(...cur.nodes.keys()); }

    function heightOf(v) { return v.kind === "state" ? STATE_H : LEAF_H; }

    function layout(root) {
      let cursor = PAD, maxX = 0;
      function place(v, depth) {
        v.x = PAD + depth * (NODE_W + GAP_X);
        v.h = heightOf(v);
        maxX = Math.max(maxX, v.x + NODE_W);
        const start = cursor;
        if (!v.children.length) {
          v.y = cursor;
          cursor += v.h + GAP_Y;
          return;
        }
        for (const c of v.children) place(c, depth + 1);
        const first = v.children[0], last = v.children[v.children.length - 1];
        const span = last.y + last.h - first.y;
        if (span < v.h) cursor += v.h - span;
        v.y = Math.max(start, (first.y + first.h / 2 + last.y + last.h / 2) / 2 - v.h / 2);
      }
      place(root, 0);
      return { width: maxX + PAD, height: cursor + PAD, rootY: root.y };
    }

    // ------------------------------------------------------------------ drawing
    function render() {
      const root = buildView();
      const size = layout(root);
      svg.replaceChildren();
      svg.setAttribute("viewBox", `0 0 ${size.width} ${size.height}`);
      svg.setAttribute("width", size.width * view.zoom);
      svg.setAttribute("height", size.height * view.zoom);
      view.rootY = size.rootY * view.zoom;
      const gEdges = sv("g", { class: "edges" }), gNodes = sv("g", { class: "nodes" });
      svg.append(gEdges, gNodes);
      (function walk(v) {
        for (const c of v.children) {
          drawEdge(gEdges, v, c);
          walk(c);
        }
        drawNode(gNodes, v);
      })(root);
    }

    function edgeClass(e) {
      if (!e) return "edge group-edge";
      const parts = ["edge", e.outcome];
      if (ERROR_OUTCOMES.has(e.outcome)) parts.push("edge-error");
      if (cur.proofEdges.has(e.s + "-" + e.t)) parts.push("proof");
      return parts.join(" ");
    }

    function drawEdge(g, p, c) {
      const e = c.edge;
      const x1 = p.x + NODE_W, y1 = p.y + p.h / 2, x2 = c.x, y2 = c.y + c.h / 2, mx = (x1 + x2) / 2;
      const grp = sv("g", { class: e ? edgeClass(e) : "edge group-edge" });
      if (e) {
        grp.setAttribute("data-edge", e.s + "-" + e.t);
        grp.setAttribute("data-outcome", e.outcome);
      }
      const d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
      grp.append(sv("path", { d }), sv("path", { d, class: "hit" }));
      if (e) {
        const tac = sv("text", { class: "tac", x: x2 - 8, y: y2 - 5, "text-anchor": "end" }, clip(oneLine(e.tactic), 28));
        const sc = ERROR_OUTCOMES.has(e.outcome) ? `${e.outcome}` : `${e.outcome} ${num(e.score, 3)}`;
        const sct = sv("text", { class: "sc", x: x2 - 8, y: y2 + 11, "text-anchor": "end" }, sc);
        const title = sv("title", null, `${e.tactic}\n${e.outcome}  score ${num(e.score, 3)}  ${num(e.elapsed * 1000, 0)} ms` +
          (e.error ? "\n" + e.error : ""));
        grp.append(tac, sct, title);
        grp.addEventListener("click", (ev) => { ev.stopPropagation(); showEdge(e); });
      }
      g.append(grp);
    }

    // The last two lines of a goal display, separator lines dropped; a Coq conclusion gets a "⊢".
    function goalPreview(goals) {
      const lines = String(goals).split("\n").map((l) => l.trim()).filter((l) => l);
      const out = [];
      for (let i = 0; i < lines.length; i++) {
        if (/^=+$/.test(lines[i])) continue;
        const afterSep = i > 0 && /^=+$/.test(lines[i - 1]);
        out.push(afterSep ? "\u22a2 " + lines[i] : lines[i]);
      }
      return out.slice(-2).map((l) => clip(l, 36));
    }

    function drawNode(g, v) {
      const cls = ["node", "kind-" + v.kind];
      const lines = [];
      let idText = "";
      if (v.kind === "state") {
        const n = v.node;
        cls.push("st-" + n.status);
        if (n.terminal) cls.push("terminal");
        if (cur.proofNodes.has(v.id)) cls.push("on-proof");
        idText = n.terminal ? `#${v.id} \u2713 no goals: proved` :
          `#${v.id} ${n.status} d${n.depth} p=${num(n.priority, 2)}` + (n.expanded_at !== null ? ` x${n.expanded_at}` : "");
        if (!n.terminal) lines.push(...goalPreview(n.goals));
        if (v.hidden) lines.push(`\u2026 ${v.hidden} attempts hidden`);
      } else if (v.kind === "err") {
        cls.push("errleaf");
        idText = `\u2717 ${v.edge.outcome}`;
        lines.push(clip(errorHead(v.edge.error || v.edge.outcome), 35));
      } else if (v.kind === "dup") {
        cls.push("dupref");
        idText = `\u21aa #${v.id} (known state)`;
        const n = cur.nodes.get(v.id);
        if (n) lines.push(...goalPreview(n.goals).slice(-1));
      } else {
        cls.push("group");
        const kinds = {};
        for (const e of v.errs) kinds[e.outcome] = (kinds[e.outcome] || 0) + 1;
        idText = (v.open ? "\u25be hide " : "\u25b8 show ") + `${v.errs.length} failed attempts`;
        lines.push(Object.keys(kinds).sort().map((k) => `${k} ${kinds[k]}`).join(" \u00b7 "));
      }
      if (view.selected === v.key) cls.push("selected");
      const grp = sv("g", { class: cls.join(" "), transform: `translate(${v.x},${v.y})`, "data-key": v.key,
        "data-node": v.id });
      grp.append(sv("rect", { width: NODE_W, height: v.h, rx: 4 }));
      grp.append(sv("text", { class: "nid", x: 8, y: 15 }, idText));
      lines.slice(0, v.kind === "state" ? 3 : 1).forEach((l, i) =>
        grp.append(sv("text", { class: v.kind === "err" ? "errtext" : "goal", x: 8, y: 30 + 13 * i }, l)));
      if (v.kind === "state" && (cur.out.get(v.id) || []).length) {
        const collapsed = view.collapsed.has(v.key);
        const t = sv("g", { class: "toggle", transform: `translate(${NODE_W},${v.h / 2})`, "data-toggle": v.key });
        t.append(sv("circle", { r: 8 }), sv("text", { x: 0, y: 0 }, collapsed ? "+" : "\u2212"));
        t.append(sv("title", null, collapsed ? "expand" : "collapse"));
        t.addEventListener("click", (ev) => {
          ev.stopPropagation();
          if (collapsed) view.collapsed.delete(v.key); else view.collapsed.add(v.key);
          render();
        });
        grp.append(t);
      }
      grp.addEventListener("click", (ev) => {
        ev.stopPropagation();
        if (v.kind === "group") {
          view.errors.set(v.key, !v.open);
          render();
          showNode(v.id);
          return;
        }
        view.selected = v.key;
        if (v.kind === "err" || v.kind === "dup") showEdge(v.edge); else showNode(v.id);
        render();
      });
      g.append(grp);
    }

    // ------------------------------------------------------------------ details
    function kv(dl, k, v) { dl.append(el("dt", null, k), el("dd", null, v)); }

    function showNode(id) {
      const n = cur.nodes.get(id);
      details.replaceChildren();
      if (!n) return;
      details.append(el("h3", null, `node #${id}: ${n.terminal ? "proof complete" : n.status}`));
      details.append(el("div", null, `depth ${n.depth} \u00b7 priority ${num(n.priority, 3)}` +
        (n.expanded_at !== null ? ` \u00b7 expanded at expansion ${n.expanded_at}` : " \u00b7 not expanded")));
      if (!n.terminal) details.append(el("pre", { class: "goals" }, n.goals || "(no goal text)"));
      const edges = cur.out.get(id) || [];
      if (edges.length) {
        const t = el("table", { class: "attempts" });
        const hr = el("tr");
        for (const h of ["#", "tactic", "outcome", "score", "ms", "result"]) hr.append(el("th", null, h));
        t.append(hr);
        for (const e of edges) {
          const r = el("tr", { class: ERROR_OUTCOMES.has(e.outcome) ? "err" : "" });
          const res = ERROR_OUTCOMES.has(e.outcome) ? errorHead(e.error || e.outcome) : `\u2192 #${e.t}`;
          r.append(el("td", null, e.order), el("td", null, e.tactic), el("td", null, e.outcome),
            el("td", null, num(e.score, 3)), el("td", null, num(e.elapsed * 1000, 0)), el("td", null, clip(res, 120)));
          r.addEventListener("click", () => showEdge(e));
          t.append(r);
        }
        details.append(el("div", null, `${edges.length} attempts from this node (click a row for details):`), t);
      }
    }

    function showEdge(e) {
      details.replaceChildren();
      details.append(el("h3", null, `attempt #${e.order}: #${e.s} \u2192 #${e.t} (${e.outcome})`));
      const dl = el("dl");
      kv(dl, "tactic", e.tactic);
      kv(dl, "score", num(e.score, 4));
      kv(dl, "outcome", e.outcome);
      kv(dl, "prover time", `${num(e.elapsed * 1000, 1)} ms`);
      details.append(dl);
      if (e.error) details.append(el("div", null, "error:"), el("pre", { class: "err" }, e.error));
      const before = cur.nodes.get(e.s);
      if (before) details.append(el("div", null, "goals before:"), el("pre", null, before.goals));
    }

    // ------------------------------------------------------------------ open a theorem
    function openTheorem(name) {
      const thm = DATA.theorems.find((t) => t.name === name);
      if (!thm) return;
      if (location.hash !== "#" + encodeURIComponent(name)) history.replaceState(null, "", "#" + encodeURIComponent(name));
      view = { collapsed: new Set(), errors: new Map(), proofOnly: false, zoom: view.zoom, selected: null };
      treeHeader.replaceChildren();
      const h = el("h2", { class: "st-" + thm.status, id: "tree-title" }, `${thm.name}: ${thm.status} (${thm.reason})`);
      const meta = el("div", { class: "meta" }, `${thm.family} \u00b7 ${thm.expansions} expansions \u00b7 ${thm.nodes} nodes \u00b7 ` +
        `${num(thm.time, 1)} s (model ${num(thm.model, 1)} s, prover ${num(thm.prover, 1)} s)` +
        (thm.check === null ? "" : thm.check ? " \u00b7 re-check ok" : " \u00b7 re-check FAILED"));
      treeHeader.append(h, meta);
      if (thm.proof) treeHeader.append(el("div", { class: "proofline", id: "proof-line" }, "proof: " + thm.proof.join("  \u25b8  ")));
      if (thm.error) treeHeader.append(el("div", { class: "st-error" }, thm.error));
      if (thm.trace === null || thm.trace === undefined) {
        cur = null;
        $("tree-toolbar").hidden = true;
        svg.replaceChildren();
        svg.setAttribute("width", 0);
        svg.setAttribute("height", 0);
        details.replaceChildren(el("p", { class: "hint" }, "No search trace was recorded for this theorem."));
        renderTable();
        return;
      }
      cur = prepare(thm);
      if (cur.tr.partial) treeHeader.append(el("div", { class: "meta" }, "note: " + cur.tr.partial));
      $("tree-toolbar").hidden = false;
      render();
      const wrap = $("graph-wrap");
      wrap.scrollLeft = 0;
      wrap.scrollTop = Math.max(0, view.rootY - wrap.clientHeight / 3);
      showNode(rootId());
      renderTable();
    }

    $("btn-errors-open").addEventListener("click", () => {
      if (!cur) return;
      for (const id of cur.out.keys()) view.errors.set("g" + id, true);
      view.proofOnly = false;
      render();
    });
    $("btn-errors-close").addEventListener("click", () => {
      if (!cur) return;
      for (const id of cur.out.keys()) view.errors.set("g" + id, false);
      render();
    });
    $("btn-proof-only").addEventListener("click", () => { if (cur) { view.proofOnly = !view.proofOnly; render(); } });
    $("btn-expand-all").addEventListener("click", () => { if (cur) { view.collapsed.clear(); render(); } });
    $("btn-zoom-in").addEventListener("click", () => { view.zoom = Math.min(3, view.zoom * 1.25); if (cur) render(); });
    $("btn-zoom-out").addEventListener("click", () => { view.zoom = Math.max(0.2, view.zoom / 1.25); if (cur) render(); });

    renderSummary();
    renderTable();
    const fromHash = decodeURIComponent(location.hash.replace(/^#/, ""));
    if (fromHash) openTheorem(fromHash);
    document.body.setAttribute("data-ready", "1");
  }
})();
