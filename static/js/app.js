// Small progressive enhancements; every page works without them.
document.addEventListener("click", (event) => {
  const preset = event.target.closest("[data-preset]");
  if (preset) {
    const input = document.getElementById(preset.dataset.target);
    input.value = preset.dataset.preset;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.dispatchEvent(new Event("change", { bubbles: true }));
    document.querySelectorAll(`[data-target="${preset.dataset.target}"]`).forEach((b) => b.classList.toggle("on", b === preset));
  }
  const placeholder = event.target.closest("[data-insert]");
  if (placeholder) {
    const field = document.getElementById(placeholder.dataset.field);
    const start = field.selectionStart ?? field.value.length;
    const end = field.selectionEnd ?? field.value.length;
    field.value = field.value.slice(0, start) + placeholder.dataset.insert + field.value.slice(end);
    field.focus();
    field.selectionStart = field.selectionEnd = start + placeholder.dataset.insert.length;
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }
  const tab = event.target.closest("[data-tab]");
  if (tab) {
    const group = tab.closest("[data-tabs]");
    group.querySelectorAll("[data-tab]").forEach((t) => t.classList.toggle("on", t === tab));
    group.querySelectorAll("[data-panel]").forEach((p) => { p.hidden = p.dataset.panel !== tab.dataset.tab; });
  }
});
// Close any open three-dot menu when clicking elsewhere.
document.addEventListener("click", (event) => {
  document.querySelectorAll("details.menu[open]").forEach((menu) => { if (!menu.contains(event.target)) menu.open = false; });
});
// Tabs start with only the first panel shown.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-tabs]").forEach((group) => {
    const first = group.querySelector("[data-tab]");
    if (first) first.click();
  });
  document.querySelectorAll("[data-toggle-target]").forEach((box) => {
    const sync = () => { document.getElementById(box.dataset.toggleTarget).hidden = "toggleInvert" in box.dataset ? box.checked : !box.checked; };
    box.addEventListener("change", sync); sync();
  });
});
// Reward steps: show only the fields of the chosen reward kind.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-reward]").forEach((block) => {
    const sync = () => {
      const chosen = block.querySelector(".reward-kinds input:checked");
      const kind = chosen ? chosen.value : "";
      block.querySelectorAll("[data-kinds]").forEach((f) => { f.hidden = !kind || !f.dataset.kinds.split(" ").includes(kind); });
    };
    block.addEventListener("change", sync); sync();
  });
});
// The message step's channel order: arrows move a channel up or down and renumber the positions
// (which the form reads; without JavaScript the owner types them).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-order-list]").forEach((list) => {
    const status = list.parentElement.querySelector("[data-order-status]");
    const sync = () => {
      const rows = [...list.querySelectorAll(":scope > li")];
      rows.forEach((row, i) => {
        row.querySelector("[data-order-input]").value = i + 1;
        row.querySelector('[data-move="up"]').disabled = i === 0;
        row.querySelector('[data-move="down"]').disabled = i === rows.length - 1;
      });
    };
    list.querySelectorAll("[data-order-arrows]").forEach((arrows) => { arrows.hidden = false; });
    list.querySelectorAll(".order-position").forEach((field) => { field.hidden = true; });
    list.addEventListener("click", (event) => {
      const button = event.target.closest("[data-move]");
      if (!button) return;
      const row = button.closest("li");
      const other = button.dataset.move === "up" ? row.previousElementSibling : row.nextElementSibling;
      if (!other) return;
      if (button.dataset.move === "up") other.before(row); else other.after(row);
      sync();
      row.classList.remove("moved"); void row.offsetWidth; row.classList.add("moved");
      // Keep the keyboard where it was: on the same arrow, or the other one at the ends.
      (button.disabled ? row.querySelector(`[data-move="${button.dataset.move === "up" ? "down" : "up"}"]`) : button).focus();
      const position = [...list.children].indexOf(row) + 1;
      if (status) status.textContent = `${row.querySelector(".choice span").firstChild.textContent.trim()} moved to position ${position}.`;
      list.closest("form")?.dispatchEvent(new Event("change", { bubbles: true }));
    });
    sync();
  });
});
