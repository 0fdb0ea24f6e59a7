// The wallet's service worker: shows pushes and opens the message link on click.
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { title: "New message", body: event.data.text() }; }
  const title = data.title || "New message";
  event.waitUntil(self.registration.showNotification(title, {
    body: data.body || "",
    icon: data.icon || "/static/wallet/icon-192.png",
    badge: "/static/wallet/icon-192.png",
    tag: data.tag || undefined,
    data: { url: data.url || "/" },
  }));
});

async function openLink(notification) {
  const url = (notification.data && notification.data.url) || "/";
  notification.close();
  // An open wallet window goes to the message; otherwise a new window opens on it.
  const windows = await self.clients.matchAll({ type: "window" });
  for (const client of windows) {
    if ("navigate" in client) {
      const navigated = await client.navigate(url);
      try { await (navigated || client).focus(); } catch (e) { /* focus needs a user gesture */ }
      return navigated;
    }
  }
  return self.clients.openWindow(url);
}

self.addEventListener("notificationclick", (event) => event.waitUntil(openLink(event.notification)));

// Tests cannot click an OS notification; they ask the worker to run the same click handler.
self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "click-latest-notification") {
    event.waitUntil(self.registration.getNotifications().then((list) => list.length && openLink(list[list.length - 1])));
  }
});
