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
