// CityBlocks console: small progressive enhancements; every page works without them.
"use strict";

function followFeed(box) {
  const list = box.querySelector(".events");
  const state = box.querySelector(".feed-state");
  const empty = box.querySelector(".empty");
  const source = new EventSource(box.dataset.feed);
  source.onopen = () => { state.textContent = box.dataset.connected; };
  source.onerror = () => { state.textContent = box.dataset.disconnected; };
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

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-feed]").forEach(followFeed);
});
