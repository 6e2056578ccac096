// The console's charts: each .chart[data-api] is drawn with uPlot from the JSON API it names.
// The same figures are in the tables beside each chart, for screen readers and for no script at all.
"use strict";
(function () {
  var COLOURS = ["#0b5394", "#1d6b2f", "#b45f06", "#a4150f", "#674ea7", "#45818e", "#7f6000", "#3d3d39"];

  function seconds(text) { // "YYYY-MM-DD" or "YYYY-MM-DD HH" (UTC) as Unix seconds
    var parts = text.split(/[- ]/).map(Number);
    return Date.UTC(parts[0], parts[1] - 1, parts[2], parts[3] || 0) / 1000;
  }

  function series(names) {
    return [{}].concat(names.map(function (name, n) {
      return { label: name, stroke: COLOURS[n % COLOURS.length], width: 2 };
    }));
  }

  function shape(id, body, element) {
    if (id === "chart-subscribers") {
      var keys = ["new", "confirmed", "unsubscribed", "bounced", "complained"];
      return { names: keys, data: [body.days.map(function (d) { return seconds(d.day); })].concat(
        keys.map(function (k) { return body.days.map(function (d) { return d[k]; }); })) };
    }
    if (id === "chart-deliveries") {
      var found = {};
      body.hours.forEach(function (h) { Object.keys(h.counts).forEach(function (k) { found[k] = true; }); });
      var names = Object.keys(found).sort();
      return { names: names, data: [body.hours.map(function (h) { return seconds(h.hour); })].concat(
        names.map(function (k) { return body.hours.map(function (h) { return h.counts[k] || 0; }); })) };
    }
    var editions = body.editions.slice().sort(function (a, b) { return a.edition - b.edition; });
    var line = Number(element.getAttribute("data-line")) * 100;
    return { names: ["complaint rate %", "0.3% line"], time: false, data: [
      editions.map(function (e) { return e.edition; }),
      editions.map(function (e) { return e.complaint_rate * 100; }),
      editions.map(function () { return line; })] };
  }

  function draw(element) {
    fetch(element.getAttribute("data-api"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status + " " + response.statusText); }
        return response.json();
      })
      .then(function (body) {
        var shaped = shape(element.id, body, element);
        var options = {
          width: Math.max(280, element.clientWidth), height: 240, series: series(shaped.names),
          scales: { x: { time: shaped.time !== false } }, legend: { show: true }
        };
        new uPlot(options, shaped.data, element);
        element.setAttribute("data-points", String(shaped.data[0].length));
      })
      .catch(function (error) {
        element.setAttribute("data-error", String(error));
        element.textContent = "The chart could not be drawn (" + error + "); the table has the figures.";
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll(".chart[data-api]"), draw);
  });
})();
