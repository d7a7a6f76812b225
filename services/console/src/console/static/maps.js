// Route maps: Leaflet with OpenStreetMap tiles when online; the routes and stops are vectors, so the map
// stays readable (on a plain background) when no tile loads.
"use strict";

const ROUTE_COLOURS = ["#0b4f8a", "#b45309", "#15803d", "#7c3aed", "#be123c", "#0f766e", "#4d7c0f", "#9a3412"];

function drawMap(box) {
  if (!window.L) return;
  const map = L.map(box, { scrollWheelZoom: false });
  L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
    maxZoom: 19,
    attribution: "&copy; OpenStreetMap",
  }).addTo(map);
  fetch(box.dataset.geojson, { credentials: "same-origin" })
    .then((response) => response.json())
    .then((data) => {
      let line = 0;
      const layer = L.geoJSON(data, {
        style: () => ({ color: ROUTE_COLOURS[line++ % ROUTE_COLOURS.length], weight: 4, opacity: 0.85 }),
        pointToLayer: (feature, at) => L.circleMarker(at, {
          radius: 7,
          color: "#1b2430",
          weight: 2,
          fillColor: feature.properties.status === "done" ? "#15803d" : feature.properties.status === "failed" ? "#be123c" : "#ffffff",
          fillOpacity: 1,
        }).bindTooltip(`${feature.properties.seq}. ${feature.properties.name || ""} (${feature.properties.status})`),
        onEachFeature: (feature, shape) => {
          if (feature.properties.vehicle_code) shape.bindTooltip(feature.properties.vehicle_code);
        },
      }).addTo(map);
      const bounds = layer.getBounds();
      if (bounds.isValid()) map.fitBounds(bounds, { padding: [20, 20] });
      else map.setView([50.93, 5.338], 13);
    })
    .catch(() => map.setView([50.93, 5.338], 13));
}

function followRun(section) {
  const state = section.querySelector(".run-state");
  const bar = section.querySelector("progress");
  const tick = () => {
    fetch(section.dataset.runStatus, { credentials: "same-origin" })
      .then((response) => response.json())
      .then((run) => {
        if (run.progress) {
          bar.value = run.progress.elapsed_s;
          state.textContent = `${section.dataset.running} · ${run.progress.elapsed_s} s`;
        }
        if (run.status === "completed" || run.status === "failed") window.location.reload();
        else setTimeout(tick, 1000);
      })
      .catch(() => setTimeout(tick, 2000));
  };
  setTimeout(tick, 700);
}

// A driver's outcome arrives on the live feed: fetch this page again and swap in the fresh routes table.
function refreshOnStopEvents(table) {
  let pending = false;
  document.addEventListener("cityblocks:event", (message) => {
    if (!["StopCompleted", "StopFailed"].includes(message.detail.name) || pending) return;
    pending = true;
    setTimeout(() => {
      fetch(window.location.href, { credentials: "same-origin" })
        .then((response) => response.text())
        .then((html) => {
          const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("table.routes");
          if (fresh) table.replaceWith(fresh);
          table = fresh || table;
        })
        .finally(() => { pending = false; });
    }, 300);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table[data-live-refresh]").forEach(refreshOnStopEvents);
  document.querySelectorAll("[data-geojson]").forEach(drawMap);
  document.querySelectorAll("[data-run-status]").forEach((section) => {
    if (["queued", "running"].includes(section.dataset.status)) followRun(section);
  });
});
