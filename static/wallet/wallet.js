// The member web wallet: the same member API the mobile app uses.
(() => {
  const app = document.getElementById("app");
  const business = app.dataset.business;
  const api = app.dataset.api;
  const tokenKey = `winback-token-${business}`;
  const $ = (id) => document.getElementById(id);
  let identifier = {};

  const token = () => localStorage.getItem(tokenKey);

  async function call(path, { method = "GET", body, raw = false } = {}) {
    const headers = { Accept: "application/json" };
    if (body) headers["Content-Type"] = "application/json";
    if (token()) headers.Authorization = `Bearer ${token()}`;
    const url = /^https?:|^\//.test(path) && !path.startsWith("/member") ? path : `${api}${path}`;
    const response = await fetch(url, { method, headers, body: body ? JSON.stringify(body) : undefined });
    if (response.status === 401) {
      localStorage.removeItem(tokenKey);
      show();
      throw new Error("Please sign in again.");
    }
    if (raw) return response;
    const data = response.status === 204 ? {} : await response.json();
    if (!response.ok) {
      const error = data.error || {};
      const fields = Object.values(error.fields || {}).flat().join(" ");
      const failure = new Error(fields || error.message || `Something went wrong (${response.status}).`);
      failure.status = response.status;
      failure.code = error.code;
      failure.fields = error.fields || {};
      failure.detail = error.message;
      throw failure;
    }
    return data;
  }

  function readIdentifier(value) {
    value = value.trim();
    return value.includes("@") ? { email: value } : { phone: value };
  }

  // Sign in or join: two tabs over one code form.
  function showPane(name) {
    const joining = name === "join";
    $("sign-in-pane").hidden = joining;
    $("join-pane").hidden = !joining;
    $("tab-sign-in").classList.toggle("on", !joining);
    $("tab-join").classList.toggle("on", joining);
    $("tab-sign-in").setAttribute("aria-selected", String(!joining));
    $("tab-join").setAttribute("aria-selected", String(joining));
    $("join-form").hidden = false;
    $("token-form").hidden = true;
    $("sign-in-error").textContent = "";
    (joining ? $("join-first-name") : $("identifier")).focus();
  }
  $("tab-sign-in").addEventListener("click", () => showPane("sign-in"));
  $("tab-join").addEventListener("click", () => showPane("join"));
  $("go-join").addEventListener("click", () => showPane("join"));

  // A channel the contact cannot reach (email consent with a phone) is greyed out and unticked.
  function syncConsents() {
    const contact = $("join-contact").value.trim();
    const kind = !contact ? "" : contact.includes("@") ? "email" : "phone";
    document.querySelectorAll("#join-form [data-needs]").forEach((label) => {
      const off = Boolean(kind) && label.dataset.needs !== kind;
      const box = label.querySelector("input");
      if (off) box.checked = false;
      box.disabled = off;
      label.classList.toggle("disabled", off);
      label.title = off ? `Needs ${label.dataset.needs === "email" ? "an email address" : "a phone number"}` : "";
    });
  }
  $("join-contact").addEventListener("input", syncConsents);

  function clearFieldErrors(form) {
    form.querySelectorAll("[data-fields]").forEach((field) => {
      field.classList.remove("has-error");
      field.querySelector(".field-error").textContent = "";
    });
  }

  // Each of the API's field errors under its own field; anything else under the form.
  function showFieldErrors(form, error) {
    const rest = [];
    Object.entries(error.fields || {}).forEach(([name, messages]) => {
      const field = [...form.querySelectorAll("[data-fields]")].find((f) => f.dataset.fields.split(" ").includes(name));
      if (!field) { rest.push(...messages); return; }
      field.classList.add("has-error");
      const box = field.querySelector(".field-error");
      box.textContent = [box.textContent, ...messages].filter(Boolean).join(" ");
    });
    if (!Object.keys(error.fields || {}).length) rest.push(error.message);
    $("sign-in-error").textContent = rest.join(" ");
    const first = form.querySelector(".has-error input");
    if (first) first.focus();
  }

  $("join-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = $("join-form");
    clearFieldErrors(form);
    $("sign-in-error").textContent = "";
    const contact = readIdentifier($("join-contact").value);
    const consents = {};
    form.querySelectorAll("fieldset.consents input[type=checkbox]").forEach((box) => { consents[box.name] = box.checked; });
    const body = {
      business, first_name: $("join-first-name").value.trim(), last_name: $("join-last-name").value.trim(),
      ...contact, consents,
    };
    $("join-button").disabled = true;
    try {
      await call("/member/auth/join/", { method: "POST", body });
      identifier = contact;
      $("identifier").value = Object.values(contact)[0];
      form.hidden = true;
      $("code-sent").textContent = `Welcome, ${body.first_name}! We sent a code to ${Object.values(contact)[0]}.`;
      $("token-form").hidden = false;
      $("code").focus();
    } catch (error) {
      showFieldErrors(form, error);
    } finally {
      $("join-button").disabled = false;
    }
  });

  $("code-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("sign-in-error").textContent = "";
    identifier = readIdentifier($("identifier").value);
    try {
      await call("/member/auth/code/", { method: "POST", body: { business, ...identifier } });
      $("code-sent").textContent = `We sent a code to ${Object.values(identifier)[0]}.`;
      $("token-form").hidden = false;
      $("code").focus();
    } catch (error) {
      $("sign-in-error").textContent = error.message;
    }
  });

  $("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("sign-in-error").textContent = "";
    try {
      const body = { business, ...identifier, code: $("code").value.trim(), device_name: navigator.userAgent.slice(0, 90) };
      const data = await call("/member/auth/token/", { method: "POST", body });
      localStorage.setItem(tokenKey, data.token);
      show();
    } catch (error) {
      $("sign-in-error").textContent = error.message;
    }
  });

  $("sign-out").addEventListener("click", async () => {
    try { await call("/member/auth/sign-out/", { method: "POST" }); } catch (e) { /* signed out either way */ }
    localStorage.removeItem(tokenKey);
    show();
  });

  function li(html) {
    const item = document.createElement("li");
    item.innerHTML = html;
    return item;
  }

  function escapeHtml(text) {
    const div = document.createElement("div");
    div.textContent = text == null ? "" : String(text);
    return div.innerHTML;
  }

  function rewardLine(reward) {
    if (!reward) return "";
    // The day as the message page writes it ("17 Dec 2026"), in the page's language.
    const until = (at) => new Date(at).toLocaleDateString(document.documentElement.lang || undefined,
      { day: "numeric", month: "short", year: "numeric" });
    const expiry = reward.expires_at ? ` · until ${until(reward.expires_at)}` : "";
    const code = reward.code ? ` <span class="code">${escapeHtml(reward.code)}</span>` : "";
    return `<div><strong>${escapeHtml(reward.title)}</strong> <span class="pill">${escapeHtml(reward.status)}</span>${code}<span class="muted small">${expiry}</span></div>`;
  }

  async function loadWallet() {
    const [me, card, wallet, inbox] = await Promise.all([
      call("/member/me/"), call("/member/card/"), call("/member/wallet/"), call("/member/inbox/"),
    ]);
    $("member-name").textContent = me.first_name ? `Hi ${me.first_name}` : "Your card";
    $("stamps").textContent = card.stamps_balance;
    $("points").textContent = card.points_balance;
    $("card-code").textContent = card.card_code;
    $("to-full").textContent = card.stamps_to_full_card === 0 ? "Your card is full: ask for your reward!" : `${card.stamps_to_full_card} more ${card.stamps_to_full_card === 1 ? "stamp" : "stamps"} to a full card.`;
    const qr = await call(card.qr_svg_url, { raw: true });
    $("qr").src = URL.createObjectURL(await qr.blob());
    const rewards = $("rewards");
    rewards.replaceChildren();
    const rewardItems = wallet.results || wallet;
    if (!rewardItems.length) rewards.append(li('<span class="muted">No rewards yet.</span>'));
    rewardItems.forEach((reward) => rewards.append(li(rewardLine(reward))));
    const list = $("inbox");
    list.replaceChildren();
    const messages = inbox.results || inbox;
    if (!messages.length) list.append(li('<span class="muted">No messages yet.</span>'));
    messages.forEach((message) => {
      const item = li(`<strong>${escapeHtml(message.title)}</strong><div>${escapeHtml(message.body)}</div>${rewardLine(message.reward)}`);
      item.dataset.message = message.id;
      if (!message.opened_at) {
        item.classList.add("unread");
        const button = document.createElement("button");
        button.className = "btn small primary";
        button.textContent = message.reward && message.reward.status === "offered" ? "Open and add to my wallet" : "Mark as read";
        button.addEventListener("click", async () => {
          await call(`/member/inbox/${message.id}/open/`, { method: "POST" });
          loadWallet();
        });
        item.append(button);
      }
      list.append(item);
    });
  }

  function urlBase64ToUint8Array(value) {
    const padded = (value + "=".repeat((4 - (value.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  async function registerWorker() {
    if (!("serviceWorker" in navigator)) return null;
    return navigator.serviceWorker.register(app.dataset.sw, { scope: "/w/" });
  }

  // The application server key, from the API as the mobile app gets it (503: push not set up).
  async function pushKey() {
    try {
      return (await call(`${api}/businesses/${encodeURIComponent(business)}/push-key/`)).public_key;
    } catch (error) {
      if (error.status === 503) throw new Error("Notifications are not set up for this program yet.");
      throw error;
    }
  }

  $("enable-push").addEventListener("click", async () => {
    const state = $("push-state");
    try {
      const key = await pushKey();
      const permission = await Notification.requestPermission();
      if (permission !== "granted") throw new Error("Notifications are blocked in this browser.");
      const registration = await navigator.serviceWorker.ready;
      const subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: urlBase64ToUint8Array(key),
      });
      await call("/member/push-subscriptions/", { method: "POST", body: subscription.toJSON() });
      await call("/member/preferences/", { method: "PATCH", body: { push: true } });
      state.textContent = "Notifications are on.";
    } catch (error) {
      state.textContent = error.message;
    }
  });

  async function show() {
    const signedIn = Boolean(token());
    $("sign-in").hidden = signedIn;
    $("wallet").hidden = !signedIn;
    if (signedIn) {
      try { await loadWallet(); } catch (error) { $("push-state").textContent = error.message; }
    }
  }

  registerWorker().catch(() => {});
  show();
})();
