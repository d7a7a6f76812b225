// CityBlocks console: small progressive enhancements; every page works without them.
"use strict";

function followFeed(box) {
  const list = box.querySelector(".events");
  const state = box.querySelector(".feed-state");
  const empty = box.querySelector(".empty");
  const source = new EventSource(box.dataset.feed);
  // The server ends each stream after a while and the browser reconnects at once: only a longer gap is news.
  let gap = null;
  source.onopen = () => {
    clearTimeout(gap);
    state.textContent = box.dataset.connected;
  };
  source.onerror = () => {
    clearTimeout(gap);
    gap = setTimeout(() => { state.textContent = box.dataset.disconnected; }, 4000);
  };
  source.addEventListener("cityblocks", (message) => {
    const event = JSON.parse(message.data);
    const item = document.createElement("li");
    item.className = "new";
    const time = document.createElement("time");
    time.dateTime = event.time;
    time.textContent = event.time.replace("T", " ").slice(0, 16);
    const name = document.createElement("strong");
    name.textContent = event.name;
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = event.service;
    item.append(time, " ", name, " ", tag);
    if (event.subject) {
      const code = document.createElement("code");
      code.textContent = event.subject;
      item.append(" ", code);
    }
    list.prepend(item);
    if (empty) empty.remove();
    while (list.children.length > 200) list.lastElementChild.remove();
    document.dispatchEvent(new CustomEvent("cityblocks:event", { detail: event }));
  });
}

// Stall picking: the checkboxes are the real controls; the plan mirrors them and remembers the order of picks.
function pickStalls(form) {
  const order = form.querySelector("input[name=order]");
  const status = form.querySelector(".picked");
  const boxes = new Map([...form.querySelectorAll("input[name=stalls]")].map((box) => [box.value, box]));
  const picks = [];
  const show = () => {
    form.querySelectorAll("g.stall[data-pick]").forEach((g) => {
      g.classList.toggle("chosen", picks.includes(g.dataset.stall));
    });
    order.value = picks.join(",");
    status.textContent = `${status.dataset.pickedLabel}: ${picks.join(", ") || "\u2013"}`;
  };
  const toggle = (number, on) => {
    const at = picks.indexOf(number);
    if (on && at < 0) picks.push(number);
    if (!on && at >= 0) picks.splice(at, 1);
    show();
  };
  boxes.forEach((box, number) => box.addEventListener("change", () => toggle(number, box.checked)));
  form.querySelectorAll("g.stall[data-pick]").forEach((g) => {
    g.addEventListener("click", () => {
      const box = boxes.get(g.dataset.stall);
      if (!box) return;
      box.checked = !box.checked;
      toggle(g.dataset.stall, box.checked);
    });
  });
  show();
}

// Scanning a QR code with the camera where the browser can (BarcodeDetector); typing always works.
function offerScanner(form) {
  const button = form.querySelector("[data-scan]");
  const video = form.querySelector("[data-scan-video]");
  const field = form.querySelector("[data-scan-target]");
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const detector = new BarcodeDetector({ formats: ["qr_code"] });
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    const look = async () => {
      const found = await detector.detect(video).catch(() => []);
      if (found.length) {
        field.value = found[0].rawValue;
        stream.getTracks().forEach((track) => track.stop());
        video.hidden = true;
        const next = form.querySelector("input[name=amount]") || form.querySelector("button[type=submit]");
        next.focus();
      } else {
        requestAnimationFrame(look);
      }
    };
    look();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-scanner]").forEach(offerScanner);
  document.querySelectorAll("[data-feed]").forEach(followFeed);
  document.querySelectorAll("[data-stall-picker]").forEach(pickStalls);
});
