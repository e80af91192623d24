// slawatch console: the few things that need JavaScript. Everything else is plain HTML.
(function () {
  "use strict";

  // Time zone: default to the browser's, remembered in a cookie the server formats with.
  if (!document.body.dataset.zone) {
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone) {
        document.cookie = "tz=" + zone.replace(/[^A-Za-z0-9_\/+-]/g, "") + "; path=/; max-age=31536000; samesite=strict";
        if (!sessionStorage.getItem("slawatch-tz-set")) {
          sessionStorage.setItem("slawatch-tz-set", "1");
          location.reload();
          return;
        }
      }
    } catch (e) { /* keep UTC */ }
  }

  // Countdowns in business time: the server says which clocks run right now (calendar
  // open, ticket not paused); those tick here between refreshes (every 20 s, and on events).
  var duration = function (seconds) {
    seconds = Math.max(0, Math.round(seconds));
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600);
    var m = Math.floor(seconds % 3600 / 60), s = seconds % 60, pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + pad(m) + "m";
    if (m) return m + "m " + pad(s) + "s";
    return s + "s";
  };
  setInterval(function () {
    document.querySelectorAll("[data-tick]").forEach(function (cell) {
      var up = cell.dataset.tick === "up";
      var seconds = parseFloat(cell.dataset.seconds) + (up ? 1 : -1);
      cell.dataset.seconds = String(Math.max(0, seconds));
      cell.textContent = (up ? "+" : "") + duration(seconds);
    });
  }, 1000);

  document.querySelectorAll("select.autosubmit").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // Live board: SLA events arrive over Server-Sent Events; each burst makes htmx re-fetch
  // the board (hx-trigger "sla-changed from:body", throttled).
  var config = document.getElementById("live-config");
  if (config && window.EventSource) {
    var status = document.getElementById("live-status");
    var source = new EventSource(JSON.parse(config.textContent).stream);
    var up = function (ok) {
      if (!status) return;
      status.textContent = ok ? status.dataset.live : status.dataset.reconnecting;
      status.classList.toggle("down", !ok);
    };
    source.addEventListener("open", function () { up(true); });
    source.addEventListener("error", function () { up(false); });
    source.addEventListener("sla", function (message) {
      window.slawatchLastEvents = JSON.parse(message.data);
      document.body.dispatchEvent(new CustomEvent("sla-changed", { detail: window.slawatchLastEvents }));
    });
  }

  // Reports: charts from the JSON the server embedded (the same figures as the table).
  var data = document.getElementById("chart-data");
  if (data && window.echarts) {
    var d = JSON.parse(data.textContent);
    var l = JSON.parse(document.getElementById("chart-labels").textContent);
    var minutes = function (values) {
      return values.map(function (v) { return v == null ? null : Math.round(v / 6) / 10; });
    };
    var line = function (id, series, unit) {
      var chart = echarts.init(document.getElementById(id), null, { renderer: "svg" });
      chart.setOption({
        animation: false, tooltip: { trigger: "axis" }, legend: { bottom: 0 },
        grid: { left: 50, right: 20, top: 30, bottom: 60 },
        xAxis: { type: "category", data: d.buckets },
        yAxis: { type: "value", name: unit },
        series: series.map(function (s) { return { name: s[0], type: "line", data: s[1], connectNulls: true }; })
      });
    };
    var bars = function (id, pairs) {
      var chart = echarts.init(document.getElementById(id), null, { renderer: "svg" });
      chart.setOption({
        animation: false, tooltip: {}, grid: { left: 50, right: 20, top: 20, bottom: 30 },
        xAxis: { type: "category", data: pairs.map(function (p) { return p[0]; }) },
        yAxis: { type: "value", minInterval: 1 },
        series: [{ name: l.breached, type: "bar", data: pairs.map(function (p) { return p[1]; }), itemStyle: { color: "#d92d20" } }]
      });
    };
    line("chart-met", [[l.met, d.met]], "%");
    line("chart-times", [[l.frt50, minutes(d.frt50)], [l.frt90, minutes(d.frt90)],
                         [l.rt50, minutes(d.rt50)], [l.rt90, minutes(d.rt90)]], "min");
    bars("chart-tiers", d.tiers);
    bars("chart-policies", d.policies);
    document.body.dataset.chartsReady = "1";
  }
})();
