// The status page: the model, the knowledge base's size, and the engine's load and latency,
// read from the service's own Prometheus text (/metrics) every 2 s. Counters and histograms
// are cumulative, so a figure over the recent window is the difference between the newest
// sample and the oldest one kept (five minutes), as Prometheus' rate() and
// histogram_quantile() compute it.
"use strict";

(() => {
  const {el} = Console;
  const POLL_MS = 2000;
  const WINDOW_S = 300;
  const WIDTH = 1000;  // the charts' viewBox: 1000 x 120
  const P = "cogcore:";
  const samples = [];  // snapshots, oldest first
  const notice = document.getElementById("status-notice");
  const set = (id, text) => { document.getElementById(id).textContent = text; };

  // Prometheus text exposition format to [{name, labels, value}].
  function parseMetrics(text) {
    const out = [];
    const line = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/;
    const label = /([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g;
    for (const raw of text.split("\n")) {
      const match = raw.match(line);
      if (!match || raw.startsWith("#")) continue;
      const labels = {};
      for (const [, key, value] of (match[2] || "").matchAll(label)) {
        labels[key] = value.replace(/\\"/g, '"').replace(/\\n/g, "\n").replace(/\\\\/g, "\\");
      }
      out.push({name: match[1], labels, value: Number(match[3])});
    }
    return out;
  }

  function total(metrics, name, by) {
    const picked = metrics.filter((m) => m.name === name);
    if (!by) return picked.reduce((sum, m) => sum + m.value, 0);
    const groups = {};
    for (const m of picked) groups[m.labels[by]] = (groups[m.labels[by]] || 0) + m.value;
    return groups;
  }

  function histogram(metrics, name) {
    const buckets = Object.entries(total(metrics, `${name}_bucket`, "le"))
      .map(([le, count]) => [le === "+Inf" ? Infinity : Number(le), count]).sort((a, b) => a[0] - b[0]);
    return {buckets, sum: total(metrics, `${name}_sum`), count: total(metrics, `${name}_count`)};
  }

  function snapshot(metrics) {
    return {
      t: performance.now() / 1000,
      tokens: total(metrics, `${P}generation_tokens_total`),
      prompt: total(metrics, `${P}prompt_tokens_total`),
      finished: total(metrics, `${P}request_success_total`),
      running: total(metrics, `${P}num_requests_running`),
      waiting: total(metrics, `${P}num_requests_waiting`),
      ttft: histogram(metrics, `${P}time_to_first_token_seconds`),
      itl: histogram(metrics, `${P}inter_token_latency_seconds`),
    };
  }

  function minus(newer, older) {
    const before = new Map(older.buckets);
    return {buckets: newer.buckets.map(([le, n]) => [le, n - (before.get(le) || 0)]),
            sum: newer.sum - older.sum, count: newer.count - older.count};
  }

  // Prometheus' histogram_quantile: linear inside the bucket the rank falls in.
  function quantile(q, {buckets}) {
    const count = buckets.length ? buckets[buckets.length - 1][1] : 0;
    if (!count) return null;
    const rank = q * count;
    let lower = 0;
    let below = 0;
    for (const [le, n] of buckets) {
      if (n >= rank) {
        if (!Number.isFinite(le)) return lower;
        return n === below ? le : lower + (le - lower) * (rank - below) / (n - below);
      }
      lower = le;
      below = n;
    }
    return lower;
  }

  const ms = (s) => (s === null ? "–" : `${Math.round(s * 1000)} ms`);

  function chart(id, series, dashed = []) {
    const svg = document.getElementById(id);
    const ns = "http://www.w3.org/2000/svg";
    const top = Math.max(1, ...series.flat());
    const span = WINDOW_S;
    const now = samples[samples.length - 1].t;
    const lines = series.map((values, i) => {
      const points = values.map((v, j) => {
        const age = now - samples[samples.length - values.length + j].t;
        const x = WIDTH - (age / span) * WIDTH;
        return `${x.toFixed(1)},${(115 - (v / top) * 105).toFixed(1)}`;
      });
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", points.join(" "));
      line.setAttribute("class", dashed.includes(i) ? "series dashed" : "series");
      return line;
    });
    const scale = document.createElementNS(ns, "text");
    scale.setAttribute("x", "4");
    scale.setAttribute("y", "12");
    scale.textContent = top.toFixed(top < 10 ? 1 : 0);
    svg.replaceChildren(scale, ...lines);
  }

  function render() {
    const newest = samples[samples.length - 1];
    const oldest = samples[0];
    const seconds = newest.t - oldest.t;
    set("stat-running", newest.running);
    set("stat-waiting", newest.waiting);
    set("stat-window", seconds >= WINDOW_S - POLL_MS / 1000
      ? "the last 5 minutes" : `the last ${Math.round(seconds)} s (since this page opened)`);
    const ttft = minus(newest.ttft, oldest.ttft);
    set("stat-tps", seconds > 0 ? ((newest.tokens - oldest.tokens) / seconds).toFixed(1) : "–");
    set("stat-ttft", `${ms(quantile(0.5, ttft))} / ${ms(quantile(0.9, ttft))}`);
    set("stat-itl", ms(quantile(0.5, minus(newest.itl, oldest.itl))));
    set("stat-finished", newest.finished - oldest.finished);
    const rates = samples.slice(1).map((s, i) =>
      (s.tokens - samples[i].tokens) / Math.max(1e-3, s.t - samples[i].t));
    chart("chart-tps", [rates]);
    chart("chart-queue", [samples.map((s) => s.running), samples.map((s) => s.waiting)], [1]);
  }

  function renderTotals(metrics, newest) {
    const rows = [
      ["Requests finished", newest.finished],
      ...Object.entries(total(metrics, `${P}request_success_total`, "finished_reason"))
        .map(([reason, n]) => [`  finished by ${reason}`, n]),
      ...Object.entries(total(metrics, `${P}route_requests_total`, "route"))
        .map(([route, n]) => [`Route ${route}`, n]),
      ["Abstentions", total(metrics, `${P}abstentions_total`)],
      ["Prompt tokens", newest.prompt],
      ["Output tokens", newest.tokens],
      ["Time to first token p50 / p90",
       `${ms(quantile(0.5, newest.ttft))} / ${ms(quantile(0.9, newest.ttft))}`],
      ...Object.entries(total(metrics, `${P}http_errors_total`, "status"))
        .map(([status, n]) => [`HTTP ${status} responses`, n]),
    ];
    document.querySelector("#totals tbody").replaceChildren(...rows.map(([name, value]) =>
      el("tr", {}, el("th", {}, name), el("td", {}, String(value)))));
  }

  async function poll() {
    try {
      const [ready, text] = await Promise.all([
        fetch("/ready").then((r) => (r.ok ? "yes" : "loading")),
        fetch("/metrics").then((r) => r.text())]);
      set("stat-ready", ready);
      const metrics = parseMetrics(text);
      samples.push(snapshot(metrics));
      while (samples.length > 2 && samples[samples.length - 1].t - samples[1].t >= WINDOW_S) {
        samples.shift();
      }
      render();
      renderTotals(metrics, samples[samples.length - 1]);
    } catch (error) {
      notice.hidden = false;
      Console.show(notice, `metrics: ${Console.describe(error)}`, "error");
    }
  }

  async function store() {
    try {
      const [docs, files] = await Promise.all([Console.json("/v1/documents?limit=1"),
                                               Console.json("/v1/files")]);
      set("stat-docs", docs.total);
      set("stat-files", files.data.length);
    } catch (error) {
      set("stat-docs", error.status === 503 ? "no knowledge base" : "–");
    }
  }

  Console.header("Status");
  Console.modelName().then((name) => set("stat-model", name),
                           (error) => set("stat-model", Console.describe(error)))
    .then(store);
  poll();
  setInterval(poll, POLL_MS);
  setInterval(store, 10 * POLL_MS);
})();
