/* EnMS Stream dashboard: one WebSocket, machine cards, anomaly table, training jobs, toasts.
 *
 * Wire format (server -> client): {"type": <event_type>, "data": <event dict>} for events,
 * {"type": "connection", ...} on open and {"type": "pong", ...} after a ping.
 * All event text is written with textContent, never innerHTML.
 */
(function () {
  "use strict";

  // ---------------------------------------------------------------- configuration
  var BASE = new URL(".", location.href); // "/" or e.g. "/api/analytics/"
  var PAGE_PARAMS = new URLSearchParams(location.search);
  var RECONNECT_BASE_MS = 1000;
  var RECONNECT_MAX_MS = 30000;
  var RECONNECT_JITTER_MS = 1000;
  var OFFLINE_AFTER_FAILURES = 10;
  var PING_EVERY_MS = 30000;
  var PONG_TIMEOUT_MS = 10000;
  var MAX_TOASTS = 5;
  var MAX_ANOMALY_ROWS = 50;
  var MAX_TRAINING_ROWS = 20;
  var SPARK_POINTS = 60;
  var DAY_MS = 24 * 3600 * 1000;
  var SEEN_IDS_MAX = 1000;

  function wsUrl() {
    var url = new URL("api/v1/ws/dashboard", BASE);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    var mid = PAGE_PARAMS.get("machine_id");
    if (mid) url.searchParams.set("machine_id", mid);
    return url.toString();
  }

  // ---------------------------------------------------------------- small helpers
  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function isNum(v) { return typeof v === "number" && isFinite(v); }

  function fmt(v, digits) {
    if (!isNum(v)) return "\u2014";
    var d = digits === undefined ? 1 : digits;
    return v.toLocaleString(undefined, { minimumFractionDigits: d, maximumFractionDigits: d });
  }

  function fmtTime(iso) {
    var d = iso ? new Date(iso) : new Date();
    if (isNaN(d.getTime())) return String(iso || "");
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  }

  function fmtDateTime(iso) {
    var d = iso ? new Date(iso) : new Date();
    if (isNaN(d.getTime())) return String(iso || "");
    return d.toLocaleString([], { hour12: false });
  }

  function metricUnit(metric) {
    var m = String(metric || "");
    if (/_kw$/.test(m)) return " kW";
    if (/_kwh$/.test(m)) return " kWh";
    if (/_pct$|percent/.test(m)) return " %";
    return "";
  }

  function severityClass(sev) {
    var s = String(sev || "").toLowerCase();
    if (s === "critical") return "critical";
    if (s === "warning") return "warning";
    if (s === "info") return "info";
    return "normal";
  }

  // ---------------------------------------------------------------- machines
  var machines = new Map(); // id -> {id, name, type, rated, card, points, anomalyTimes, refs}
  var machineList = $("machines");

  function machineName(id, fallbackName) {
    var m = id ? machines.get(id) : null;
    if (m && m.name) return m.name;
    return fallbackName || id || "unknown machine";
  }

  function ensureMachine(id, info) {
    info = info || {};
    var m = machines.get(id);
    if (!m) {
      m = { id: id, name: info.name || id, named: !!info.name, type: info.type || "",
            rated: isNum(info.rated_power_kw) ? info.rated_power_kw : null,
            points: [], anomalyTimes: [], refs: null, card: null };
      machines.set(id, m);
      buildCard(m);
    } else if (info.name && (!m.named || info.authoritative)) {
      m.name = info.name; m.named = true;
      if (info.type) m.type = info.type;
      if (isNum(info.rated_power_kw)) m.rated = info.rated_power_kw;
      m.refs.name.textContent = m.name;
      m.refs.type.textContent = m.type;
      m.refs.name.title = m.id;
    }
    var empty = $("machines-empty");
    if (empty) empty.remove();
    return m;
  }

  function buildCard(m) {
    var card = el("article", "machine-card");
    card.setAttribute("data-machine-id", m.id);
    var head = el("div", "mc-head");
    var name = el("h3", "mc-name", m.name);
    name.title = m.id;
    var type = el("span", "mc-type", m.type);
    head.appendChild(name); head.appendChild(type);

    var power = el("div", "mc-power");
    var powerValue = el("span", "power", "\u2014");
    var powerUnit = el("span", "unit", "kW");
    power.appendChild(powerValue); power.appendChild(powerUnit);

    var load = el("div", "mc-load");
    load.setAttribute("aria-hidden", "true");
    var loadFill = el("div", "mc-load-fill");
    load.appendChild(loadFill);

    var spark = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    spark.setAttribute("class", "sparkline");
    spark.setAttribute("viewBox", "0 0 120 32");
    spark.setAttribute("preserveAspectRatio", "none");
    spark.setAttribute("role", "img");
    spark.setAttribute("aria-label", "power trend");
    var area = document.createElementNS("http://www.w3.org/2000/svg", "polygon");
    area.setAttribute("class", "spark-area");
    var line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("class", "spark-line");
    spark.appendChild(area); spark.appendChild(line);

    var stats = el("dl", "mc-stats");
    function stat(label, cls) {
      var wrap = el("div", "stat");
      wrap.appendChild(el("dt", null, label));
      var dd = el("dd", cls, "\u2014");
      wrap.appendChild(dd);
      stats.appendChild(wrap);
      return dd;
    }
    var energy = stat("Energy (interval)", "energy");
    var enpi = stat("EnPI \u00b7 CUSUM", "enpi");
    enpi.parentNode.title = "EnPI = actual / expected energy; CUSUM = sum of (actual - expected) since the baseline became active. Needs an active baseline: press Retrain baseline";
    var anomalies = stat("Anomalies (24 h)", "anomaly-count");
    anomalies.textContent = "0";
    var updated = stat("Updated", "updated");

    // Retrain: a job through Kafka; its progress appears under Training jobs.
    var retrain = el("button", "mc-retrain", "Retrain baseline");
    retrain.type = "button";
    retrain.addEventListener("click", function () { triggerRetrain(m, retrain); });

    card.appendChild(head); card.appendChild(power); card.appendChild(load);
    card.appendChild(spark); card.appendChild(stats); card.appendChild(retrain);
    machineList.appendChild(card);
    m.card = card;
    m.refs = { name: name, type: type, power: powerValue, loadFill: loadFill, line: line,
               area: area, energy: energy, enpi: enpi, anomalies: anomalies,
               updated: updated };
  }

  function drawSparkline(m) {
    var pts = m.points;
    if (pts.length === 0) return;
    var min = Math.min.apply(null, pts), max = Math.max.apply(null, pts);
    if (max - min < 1e-9) { max += 1; min -= 1; }
    var w = 120, h = 32, pad = 2;
    var step = pts.length > 1 ? w / (SPARK_POINTS - 1) : 0;
    var x0 = w - step * (pts.length - 1);
    var coords = pts.map(function (v, i) {
      var x = x0 + i * step;
      var y = h - pad - ((v - min) / (max - min)) * (h - 2 * pad);
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    m.refs.line.setAttribute("points", coords.join(" "));
    m.refs.area.setAttribute("points", x0.toFixed(1) + "," + h + " " + coords.join(" ") + " " + w + "," + h);
  }

  function onMetric(d) {
    if (!d.machine_id) return;
    var m = ensureMachine(d.machine_id, { name: d.machine_name });
    var power = isNum(d.mean_power_kw) ? d.mean_power_kw : d.value;
    if (isNum(power)) {
      m.refs.power.textContent = fmt(power, 1);
      m.points.push(power);
      if (m.points.length > SPARK_POINTS) m.points.splice(0, m.points.length - SPARK_POINTS);
      drawSparkline(m);
      if (m.rated) {
        var pct = Math.max(0, Math.min(100, (power / m.rated) * 100));
        m.refs.loadFill.style.width = pct.toFixed(1) + "%";
        m.refs.loadFill.title = fmt(pct, 0) + "% of rated " + fmt(m.rated, 0) + " kW";
      }
    }
    m.refs.energy.textContent = isNum(d.energy_kwh) ? fmt(d.energy_kwh, 2) + " kWh" : "\u2014";
    if (isNum(d.enpi)) {
      m.refs.enpi.textContent = fmt(d.enpi, 3) +
        (isNum(d.cusum_kwh) ? " \u00b7 CUSUM " + fmt(d.cusum_kwh, 1) + " kWh" : "");
      m.refs.enpi.classList.toggle("enpi-high", d.enpi > 1.05);
    }
    m.refs.updated.textContent = fmtTime(d.timestamp || d.occurred_at);
    m.card.classList.remove("flash");
    void m.card.offsetWidth; // restart the CSS animation
    m.card.classList.add("flash");
  }

  function loadMachines() {
    fetch(new URL("api/v1/machines", BASE).toString(), { headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (body) {
        var list = Array.isArray(body) ? body : (body && (body.machines || body.items || body.data)) || [];
        list.forEach(function (mm) {
          if (!mm || !mm.id) return;
          ensureMachine(String(mm.id), { name: mm.name, type: mm.type,
                                         rated_power_kw: mm.rated_power_kw, authoritative: true });
        });
        var empty = $("machines-empty");
        if (empty && machines.size === 0) empty.textContent = "No machines yet.";
      })
      .catch(function () {
        // Fall back to the names carried by events.
        var empty = $("machines-empty");
        if (empty) empty.textContent = "Machine list unavailable; cards appear as data arrives.";
      });
  }

  // ---------------------------------------------------------------- 24 h anomaly counters
  var anomalyTimes = []; // reception times (ms) of anomalies, page-wide

  function pruneCounts() {
    var cutoff = Date.now() - DAY_MS;
    while (anomalyTimes.length && anomalyTimes[0] < cutoff) anomalyTimes.shift();
    $("anomaly-count-24h").textContent = String(anomalyTimes.length);
    machines.forEach(function (m) {
      while (m.anomalyTimes.length && m.anomalyTimes[0] < cutoff) m.anomalyTimes.shift();
      m.refs.anomalies.textContent = String(m.anomalyTimes.length);
      m.card.classList.toggle("has-anomalies", m.anomalyTimes.length > 0);
    });
  }

  // ---------------------------------------------------------------- anomalies
  var anomalyBody = document.querySelector("#anomalies tbody");

  var shownAnomalies = new Set(); // event ids in the table: a live event may repeat a loaded one

  // One row of the anomaly table; on top (live) or at the bottom (loaded, newest first).
  // False when the anomaly is already shown.
  function addAnomalyRow(d, atBottom) {
    if (d.event_id) {
      if (shownAnomalies.has(d.event_id)) return false;
      shownAnomalies.add(d.event_id);
    }
    var sev = severityClass(d.severity);
    var unit = metricUnit(d.metric);
    var tr = el("tr", "sev-" + sev);
    var tdTime = el("td", "time", fmtTime(d.timestamp || d.occurred_at));
    tdTime.title = fmtDateTime(d.timestamp || d.occurred_at);
    tr.appendChild(tdTime);
    tr.appendChild(el("td", "machine", machineName(d.machine_id, d.machine_name)));
    var tdType = el("td", "type", d.anomaly_type || "unknown");
    if (d.explanation) tdType.title = d.explanation;
    tr.appendChild(tdType);
    var tdSev = el("td");
    tdSev.appendChild(el("span", "pill pill-" + sev, d.severity || "unknown"));
    tr.appendChild(tdSev);
    var tdVal = el("td", "num", fmt(d.value, 1) + unit);
    tdVal.title = String(d.metric || "");
    tr.appendChild(tdVal);
    tr.appendChild(el("td", "num", isNum(d.expected_value) ? fmt(d.expected_value, 1) + unit : "\u2014"));
    var tdScore = el("td", "num", fmt(d.score, 2));
    if (isNum(d.anomaly_score)) tdScore.title = fmt(d.anomaly_score, 1) + " robust std devs";
    tr.appendChild(tdScore);
    if (atBottom) {
      if (anomalyBody.rows.length >= MAX_ANOMALY_ROWS) return false;
      anomalyBody.appendChild(tr);
    } else {
      anomalyBody.insertBefore(tr, anomalyBody.firstChild);
      while (anomalyBody.rows.length > MAX_ANOMALY_ROWS) anomalyBody.deleteRow(-1);
    }
    var empty = $("anomalies-empty");
    if (empty) empty.remove();
    return true;
  }

  // The latest anomalies from the log (GET api/v1/anomaly/recent), so the table is not empty
  // until the next one happens. The counters stay live-only. Unavailable (503): no rows.
  function loadRecentAnomalies() {
    var url = new URL("api/v1/anomaly/recent", BASE);
    url.searchParams.set("limit", String(MAX_ANOMALY_ROWS));
    fetch(url.toString(), { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        ((body && body.anomalies) || []).forEach(function (a) {
          addAnomalyRow({
            event_id: a.id, machine_id: a.machine_id, machine_name: a.machine_name,
            timestamp: a.detected_at, anomaly_type: a.anomaly_type, severity: a.severity,
            metric: a.metric_name, value: a.metric_value, expected_value: a.expected_value,
            score: a.confidence_score, anomaly_score: a.deviation_std_dev,
            explanation: a.explanation
          }, true);
        });
      })
      .catch(function () { /* the live feed still fills the table */ });
  }

  function onAnomaly(d) {
    if (!addAnomalyRow(d, false)) return; // already shown (loaded from the log)
    var now = Date.now();
    var name = machineName(d.machine_id, d.machine_name);
    if (d.machine_id) {
      var m = ensureMachine(d.machine_id, { name: d.machine_name });
      m.anomalyTimes.push(now);
    }
    anomalyTimes.push(now);
    pruneCounts();
    var sev = severityClass(d.severity);
    var unit = metricUnit(d.metric);

    var body = (d.metric || "value") + " " + fmt(d.value, 1) + unit;
    if (isNum(d.expected_value)) {
      body += " vs expected " + fmt(d.expected_value, 1) + unit;
      if (isNum(d.deviation_percent)) body += " (" + (d.deviation_percent >= 0 ? "+" : "") + fmt(d.deviation_percent, 0) + "%)";
    }
    body += " \u00b7 " + (d.anomaly_type || "anomaly") + " \u00b7 severity " + (d.severity || "unknown");
    // An anomaly that belongs to an episode is announced by its episode: one toast per
    // fault, not one per reading.
    if (d.episode_id) return;
    showToast(sev === "critical" ? "critical" : "warning",
              (sev === "critical" ? "Critical anomaly" : "Anomaly") + " \u2014 " + name, body, 8000);
  }

  var episodeSeverity = new Map(); // episode_id -> rank of the severity last announced
  var SEV_RANK = { normal: 0, warning: 1, critical: 2 };

  function onEpisode(d) {
    var rank = SEV_RANK[d.severity] || 0;
    var before = episodeSeverity.get(d.episode_id);
    if (d.status === "closed") { episodeSeverity.delete(d.episode_id); return; }
    // Announce an episode when it opens and when its severity rises, nothing else.
    if (d.status !== "opened" && before !== undefined && rank <= before) return;
    episodeSeverity.set(d.episode_id, rank);
    if (episodeSeverity.size > 1000) episodeSeverity.delete(episodeSeverity.keys().next().value);
    var sev = severityClass(d.severity);
    var name = machineName(d.machine_id, d.machine_name);
    var title = (d.status === "opened" ? (sev === "critical" ? "Critical anomaly" : "Anomaly")
                 : "Anomaly worsened") + " \u2014 " + name;
    var body = (d.anomaly_type || "anomaly") + " \u00b7 severity " + (d.severity || "unknown") +
      (d.count > 1 ? " \u00b7 " + d.count + " readings so far" : "") +
      (d.explanation ? " \u00b7 " + d.explanation : "");
    showToast(sev === "critical" ? "critical" : "warning", title, body, 8000);
  }

  // ---------------------------------------------------------------- training jobs
  var trainingList = $("training");
  var jobs = new Map(); // training_job_id -> refs

  function ensureJob(d) {
    var id = String(d.training_job_id || d.job_id || "");
    if (!id) return null;
    var job = jobs.get(id);
    if (!job) {
      var row = el("div", "training-job");
      row.setAttribute("data-job-id", id);
      row.setAttribute("data-status", "running");
      var head = el("div", "tj-head");
      var model = el("span", "tj-model", d.model_type || "model");
      var machine = el("span", "tj-machine", machineName(d.machine_id, d.machine_name || (d.machine_id ? null : "all machines")));
      var status = el("span", "tj-status", "running");
      head.appendChild(model); head.appendChild(machine); head.appendChild(status);
      var barWrap = el("div", "tj-bar");
      var progress = el("progress", "tj-progress");
      progress.max = 100; progress.value = 0;
      progress.setAttribute("aria-label", "training progress");
      var pct = el("span", "tj-pct", "0%");
      barWrap.appendChild(progress); barWrap.appendChild(pct);
      var message = el("div", "tj-message", "");
      var idLine = el("div", "tj-id", "job " + id.slice(0, 8));
      idLine.title = id;
      row.appendChild(head); row.appendChild(barWrap); row.appendChild(message); row.appendChild(idLine);
      trainingList.insertBefore(row, trainingList.firstChild);
      var empty = $("training-empty");
      if (empty) empty.remove();
      job = { id: id, row: row, model: model, machine: machine, status: status, progress: progress,
              pct: pct, message: message };
      jobs.set(id, job);
      var rows = trainingList.querySelectorAll(".training-job");
      for (var i = MAX_TRAINING_ROWS; i < rows.length; i++) {
        jobs.delete(rows[i].getAttribute("data-job-id"));
        rows[i].remove();
      }
    }
    if (d.model_type) job.model.textContent = d.model_type;
    return job;
  }

  function setJobProgress(job, pct) {
    if (!isNum(pct)) return;
    var p = Math.max(0, Math.min(100, pct));
    job.progress.value = p;
    job.pct.textContent = fmt(p, 0) + "%";
  }

  function setJobStatus(job, status) {
    job.row.setAttribute("data-status", status);
    job.status.textContent = status;
  }

  function onTrainingStarted(d) {
    var job = ensureJob(d);
    if (!job) return;
    setJobStatus(job, "running");
    setJobProgress(job, 0);
    job.message.textContent = "started" + (d.trigger_type ? " (" + d.trigger_type + ")" : "") + (d.reason ? ": " + d.reason : "");
  }

  function onTrainingProgress(d) {
    var job = ensureJob(d);
    if (!job || job.row.getAttribute("data-status") !== "running") return;
    setJobProgress(job, d.progress_pct);
    var text = d.stage || "";
    if (d.message) text += (text ? ": " : "") + d.message;
    job.message.textContent = text;
  }

  function onTrainingCompleted(d) {
    var job = ensureJob(d);
    var name = machineName(d.machine_id, d.machine_id ? null : "all machines");
    var failed = String(d.status || "").toLowerCase() === "failed"; // old-style failure
    if (failed) return onTrainingFailed(d);
    var verdict = d.accepted ? "accepted" : "not accepted";
    var text = (d.model_type || "model") + " v" + (d.version === undefined ? "?" : d.version) + " " + verdict;
    if (!d.accepted && d.reasons && d.reasons.length) text += ": " + d.reasons.join("; ");
    if (job) {
      setJobStatus(job, "completed");
      setJobProgress(job, 100);
      job.message.textContent = text;
      job.row.classList.toggle("rejected", !d.accepted);
    }
    showToast("success", "Training completed \u2014 " + name, text, 6000);
  }

  function onTrainingFailed(d) {
    var job = ensureJob(d);
    var name = machineName(d.machine_id, d.machine_id ? null : "all machines");
    var err = d.error || d.error_message || "unknown error";
    if (job) {
      setJobStatus(job, "failed");
      job.message.textContent = err;
    }
    showToast("error", "Training failed \u2014 " + name, (d.model_type ? d.model_type + ": " : "") + err, 8000);
  }

  // ---------------------------------------------------------------- system alerts
  function onSystemAlert(d) {
    var sev = severityClass(d.severity);
    var kind = sev === "critical" ? "critical" : sev === "info" ? "info" : "warning";
    var title = "System alert" + (d.alert_type ? " \u2014 " + d.alert_type : "");
    var body = d.message || "";
    if (d.machine_id) body = machineName(d.machine_id, null) + ": " + body;
    showToast(kind, title, body, kind === "info" ? 5000 : 8000);
  }

  // ---------------------------------------------------------------- toasts
  var toasts = $("toasts");

  function removeToast(t) {
    if (!t.parentNode) return;
    clearTimeout(t._timer);
    t.classList.add("leaving");
    setTimeout(function () { t.remove(); }, 200);
  }

  function triggerRetrain(m, button) {
    var url = new URL("api/v1/model-performance/retrain/trigger", BASE);
    url.searchParams.set("model_type", "baseline");
    url.searchParams.set("machine_id", m.id);
    url.searchParams.set("trigger_type", "manual");
    url.searchParams.set("reason", "dashboard");
    button.disabled = true;
    fetch(url.toString(), { method: "POST", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
      .then(function (res) {
        if (!res.ok) {
          var detail = res.body && res.body.detail;
          showToast("error", "Retrain refused: " + m.name,
                    typeof detail === "string" ? detail : JSON.stringify(detail), 8000);
        } else if (res.body.triggered) {
          showToast("info", "Retrain queued: " + m.name, "job " + res.body.training_job_id, 5000);
        } else {
          showToast("warning", "Already training: " + m.name, "job " + res.body.training_job_id, 5000);
        }
      })
      .catch(function (e) { showToast("error", "Retrain failed: " + m.name, String(e), 8000); })
      .then(function () { button.disabled = false; });
  }

  function showToast(kind, title, body, ms) {
    var t = el("div", "toast toast-" + kind);
    var text = el("div", "toast-text");
    text.appendChild(el("div", "toast-title", title));
    if (body) text.appendChild(el("div", "toast-body", body));
    var close = el("button", "toast-close", "\u00d7");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss notification");
    close.addEventListener("click", function () { removeToast(t); });
    t.appendChild(text); t.appendChild(close);
    toasts.insertBefore(t, toasts.firstChild);
    var live = toasts.querySelectorAll(".toast:not(.leaving)");
    for (var i = MAX_TOASTS; i < live.length; i++) live[i].remove();
    t._timer = setTimeout(function () { removeToast(t); }, ms || 5000);
    return t;
  }

  // ---------------------------------------------------------------- dispatch
  var seen = new Set();
  var seenOrder = [];

  function firstTime(id) {
    if (!id) return true;
    if (seen.has(id)) return false;
    seen.add(id); seenOrder.push(id);
    if (seenOrder.length > SEEN_IDS_MAX) seen.delete(seenOrder.shift());
    return true;
  }

  var handlers = {
    anomaly_detected: onAnomaly,
    anomaly_episode: onEpisode,
    metric_updated: onMetric,
    training_started: onTrainingStarted,
    training_progress: onTrainingProgress,
    training_completed: onTrainingCompleted,
    training_failed: onTrainingFailed,
    system_alert: onSystemAlert,
    model_updated: function (d) {
      showToast("info", "Model updated", (d.model_type || "model") + (d.version !== undefined ? " v" + d.version : ""), 5000);
    }
  };

  function handleMessage(raw) {
    var msg;
    try { msg = JSON.parse(raw); } catch (e) { return; }
    if (!msg || typeof msg !== "object") return;
    var type = msg.type || msg.event_type;
    if (type === "pong") { gotPong(); return; }
    if (type === "connection") { clientId = msg.client_id || clientId; return; }
    var data = msg.data || msg.payload;
    var fn = handlers[type];
    if (!fn || !data || typeof data !== "object") return;
    if (!firstTime(data.event_id)) return;
    try {
      fn(data);
    } catch (e) {
      if (window.console) console.error("dashboard: failed to handle", type, e);
    }
    $("last-event").textContent = "Last event: " + type.replace(/_/g, " ") + " at " + fmtTime();
  }

  // ---------------------------------------------------------------- connection
  var badge = $("conn-badge");
  var BADGE_TEXT = { live: "Live", connecting: "Connecting", reconnecting: "Reconnecting", offline: "Offline" };
  var ws = null;
  var clientId = null;
  var failures = 0; // consecutive attempts that did not open, or connections that dropped
  var everConnected = false;
  var reconnectTimer = null, pingTimer = null, pongTimer = null;

  function setState(state) {
    if (badge.getAttribute("data-state") === state && badge.textContent === BADGE_TEXT[state]) return;
    badge.setAttribute("data-state", state);
    badge.textContent = BADGE_TEXT[state];
    badge.setAttribute("aria-label", "Connection status: " + BADGE_TEXT[state]);
    document.body.setAttribute("data-connection", state);
  }

  function stopHeartbeat() {
    clearInterval(pingTimer); pingTimer = null;
    clearTimeout(pongTimer); pongTimer = null;
  }

  function startHeartbeat() {
    stopHeartbeat();
    pingTimer = setInterval(function () {
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      try { ws.send(JSON.stringify({ type: "ping" })); } catch (e) { return; }
      if (!pongTimer) {
        pongTimer = setTimeout(function () {
          pongTimer = null;
          dropSocket(); // no pong: the connection is dead even if the browser has not noticed
        }, PONG_TIMEOUT_MS);
      }
    }, PING_EVERY_MS);
  }

  function gotPong() {
    clearTimeout(pongTimer); pongTimer = null;
  }

  function isOffline() {
    return navigator.onLine === false || failures >= OFFLINE_AFTER_FAILURES;
  }

  function scheduleReconnect(immediate) {
    clearTimeout(reconnectTimer);
    var delay = 0;
    if (!immediate) {
      failures += 1;
      delay = Math.min(RECONNECT_BASE_MS * Math.pow(2, failures - 1) + Math.random() * RECONNECT_JITTER_MS,
                       RECONNECT_MAX_MS);
    }
    setState(isOffline() ? "offline" : (everConnected || failures > 0 ? "reconnecting" : "connecting"));
    // Never give up: once offline the delay is capped at 30 s and attempts continue.
    reconnectTimer = setTimeout(connect, delay);
  }

  function dropSocket() {
    var old = ws;
    ws = null;
    stopHeartbeat();
    if (old) {
      old.onopen = old.onclose = old.onerror = old.onmessage = null;
      try { old.close(); } catch (e) { /* already closed */ }
    }
    scheduleReconnect(false);
  }

  function connect() {
    clearTimeout(reconnectTimer); reconnectTimer = null;
    if (ws) {
      var prev = ws; ws = null;
      prev.onopen = prev.onclose = prev.onerror = prev.onmessage = null;
      try { prev.close(); } catch (e) { /* ignore */ }
    }
    if (!isOffline()) setState(everConnected || failures > 0 ? "reconnecting" : "connecting");
    var sock;
    try {
      sock = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect(false);
      return;
    }
    ws = sock;
    sock.onopen = function () {
      if (ws !== sock) return;
      failures = 0;
      everConnected = true;
      setState("live");
      startHeartbeat();
    };
    sock.onmessage = function (ev) {
      if (ws !== sock) return;
      if (typeof ev.data === "string") handleMessage(ev.data);
    };
    sock.onerror = function () { /* a close event follows */ };
    sock.onclose = function () {
      if (ws !== sock) return;
      ws = null;
      stopHeartbeat();
      scheduleReconnect(false);
    };
  }

  window.addEventListener("offline", function () {
    setState("offline");
    if (ws) dropSocket();
  });
  window.addEventListener("online", function () {
    failures = 0;
    if (!ws || ws.readyState !== WebSocket.OPEN) scheduleReconnect(true);
  });

  // ---------------------------------------------------------------- start
  setState("connecting");
  loadMachines();
  loadRecentAnomalies();
  connect();
  setInterval(pruneCounts, 60000);

  // For debugging from the console (and the browser tests).
  window.enmsDashboard = {
    state: function () { return badge.getAttribute("data-state"); },
    clientId: function () { return clientId; },
    failures: function () { return failures; },
    wsUrl: wsUrl
  };
})();
