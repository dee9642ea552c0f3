// Hearth's service worker: shows Web Push notifications and opens the channel when one
// is clicked. Served at /sw.js (scope /) from web/public; it has no fetch handler, so
// it never stands between the app and the network.
//
// A push carries JSON (docs/api.md "Web Push"):
//   {notification_id, kind, channel_id, community_id, title, body, tag}
// `tag` is the channel id: the browser keeps one notification per channel, and
// `renotify` makes a newer one in the same channel alert again.
/* eslint-env serviceworker */
'use strict';

/** The app's address for a channel (as lib/push.ts channelPath: c=@me for DMs). */
function channelPath(channelId, communityId) {
  return '/app?c=' + encodeURIComponent(communityId || '@me') + '&ch=' + encodeURIComponent(channelId);
}

/** The payload of a push, or null when it is not ours (empty, not JSON). */
function readPayload(data) {
  if (!data) return null;
  try {
    var p = data.json();
    return p && typeof p === 'object' ? p : null;
  } catch (e) {
    return null;
  }
}

/** showNotification's title and options for a payload. */
function notificationFor(p) {
  var options = {
    body: typeof p.body === 'string' ? p.body : '',
    data: {
      notification_id: p.notification_id || null,
      kind: p.kind || null,
      channel_id: p.channel_id || null,
      community_id: p.community_id || null,
      url: p.channel_id ? channelPath(p.channel_id, p.community_id) : '/app',
    },
  };
  // renotify without a tag is an error in the Notifications API.
  if (p.tag) {
    options.tag = String(p.tag);
    options.renotify = true;
  }
  return { title: typeof p.title === 'string' && p.title ? p.title : 'Hearth', options: options };
}

self.addEventListener('install', function () {
  // A new version takes over at once: it only shows notifications, there is no cache to migrate.
  self.skipWaiting();
});

self.addEventListener('activate', function (event) {
  // Control open app windows now, so a click can navigate them.
  event.waitUntil(self.clients.claim());
});

self.addEventListener('push', function (event) {
  var p = readPayload(event.data);
  // userVisibleOnly: every push must show something, or the browser shows its own text.
  var n = p ? notificationFor(p) : { title: 'Hearth', options: { body: 'New notification', data: { url: '/app' } } };
  event.waitUntil(self.registration.showNotification(n.title, n.options));
});

/** The window to reuse: one already showing the app, the focused one first. */
function pickWindow(list) {
  var apps = list.filter(function (c) {
    try {
      return new URL(c.url).pathname === '/app';
    } catch (e) {
      return false;
    }
  });
  var focused = apps.filter(function (c) {
    return c.focused;
  });
  return focused[0] || apps[0] || null;
}

self.addEventListener('notificationclick', function (event) {
  event.notification.close();
  var data = event.notification.data || {};
  var url = new URL(data.url || '/app', self.location.origin).href;
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then(function (list) {
      var app = pickWindow(list);
      if (app) {
        // The open app switches channel itself (no reload) and marks the notification read.
        app.postMessage({
          type: 'hearth:open-channel',
          channel_id: data.channel_id,
          community_id: data.community_id,
          notification_id: data.notification_id,
        });
        return app.focus();
      }
      var other = list[0];
      if (other && other.navigate) {
        return other
          .focus()
          .then(function (c) {
            return (c || other).navigate(url);
          })
          .catch(function () {
            return self.clients.openWindow(url);
          });
      }
      return self.clients.openWindow(url);
    }),
  );
});
