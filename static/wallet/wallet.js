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
      throw new Error(fields || error.message || `Something went wrong (${response.status}).`);
    }
    return data;
  }

  function readIdentifier(value) {
    value = value.trim();
    return value.includes("@") ? { email: value } : { phone: value };
  }

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
    const expiry = reward.expires_at ? ` · until ${new Date(reward.expires_at).toLocaleDateString()}` : "";
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
    $("to-full").textContent = card.stamps_to_full_card === 0 ? "Your card is full: ask for your reward!" : `${card.stamps_to_full_card} more stamp(s) to a full card.`;
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

  $("enable-push").addEventListener("click", async () => {
    const state = $("push-state");
    try {
      if (!app.dataset.vapid) throw new Error("Notifications are not set up for this program yet.");
      const permission = await Notification.requestPermission();
      if (permission !== "granted") throw new Error("Notifications are blocked in this browser.");
      const registration = await navigator.serviceWorker.ready;
      const subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: urlBase64ToUint8Array(app.dataset.vapid),
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
