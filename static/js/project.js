/* project.js: the lead's document list (paged, searchable by text and id, filtered by status),
 * read from GET /api/v1/projects/<pid>/documents. Alpine CSP build: methods only in attributes. */
(function () {
  'use strict';
  var PER_PAGE = 25;

  function projectDocs() {
    return {
      q: '', status: '', page: 1, total: 0, loading: false, error: '',
      init: function () {
        var root = this.$el;
        this.api = root.dataset.api;
        this.pid = root.dataset.projectId;
        this.k = Number(root.dataset.k);
        this.docUrl = root.dataset.docUrl;
        this.reviewUrl = root.dataset.reviewUrl;
        document.querySelectorAll('[data-color]').forEach(function (el) { el.style.setProperty('--c', el.dataset.color); });
        this.load();
      },
      search: function (e) { if (e && e.preventDefault) e.preventDefault(); this.page = 1; this.load(); },
      prev: function () { if (this.page > 1) { this.page--; this.load(); } },
      next: function () { if (this.page * PER_PAGE < this.total) { this.page++; this.load(); } },
      load: function () {
        var self = this;
        var params = new URLSearchParams({ page: this.page, per_page: PER_PAGE });
        if (this.q.trim()) params.set('q', this.q.trim());
        if (this.status) params.set('status', this.status);
        this.loading = true;
        fetch(this.api + '/projects/' + this.pid + '/documents?' + params, { credentials: 'same-origin' })
          .then(function (r) { return r.json().then(function (d) { return [r.status, d]; }); })
          .then(function (res) {
            self.loading = false;
            if (res[0] !== 200) { self.error = res[1].error || 'Could not load documents.'; self.total = 0; self.render([]); return; }
            self.error = '';
            self.total = res[1].total;
            self.render(res[1].items);
          })
          .catch(function (e) { self.loading = false; self.error = 'Could not load documents: ' + e.message; });
      },
      render: function (items) {
        var tbody = this.$refs.rows, self = this;
        tbody.textContent = '';
        items.forEach(function (d) {
          var tr = document.createElement('tr');
          function td(text, cls) { var c = document.createElement('td'); c.textContent = text; if (cls) c.className = cls; tr.appendChild(c); return c; }
          td(d.external_id);
          td(d.preview.replace(/\s+/g, ' ').slice(0, 120), 'preview');
          td(String(d.length), 'num');
          var st = td('', 'num');
          var pill = document.createElement('span');
          var state = d.submitted >= self.k ? 'complete' : d.submitted > 0 ? 'partial' : 'new';
          pill.className = 'status-pill ' + state;
          pill.textContent = d.submitted + ' / ' + self.k;
          st.appendChild(pill);
          var open = td('', 'links');
          var a = document.createElement('a');
          a.href = self.docUrl.replace(/\/0\/annotate$/, '/' + d.id + '/annotate');
          a.textContent = 'open';
          open.appendChild(a);
          if (d.submitted > 0) {  // the review page: everyone's copy side by side, gold settled there
            var rv = document.createElement('a');
            rv.href = self.reviewUrl.replace(/\/0\/adjudicate$/, '/' + d.id + '/adjudicate');
            rv.textContent = 'review';
            rv.className = 'review-link';
            open.appendChild(document.createTextNode(' · '));
            open.appendChild(rv);
          }
          tbody.appendChild(tr);
        });
      },
      get pages() { return Math.max(1, Math.ceil(this.total / PER_PAGE)); },
      get pageText() { return 'page ' + this.page + ' of ' + this.pages; },
      get noPrev() { return this.page <= 1; },
      get noNext() { return this.page >= this.pages; },
      get summary() {
        if (this.error) return this.error;
        if (this.loading) return 'Loading…';
        return this.total + ' document' + (this.total === 1 ? '' : 's') + (this.q.trim() || this.status ? ' match' : '');
      },
    };
  }

  document.addEventListener('alpine:init', function () { window.Alpine.data('projectDocs', projectDocs); });
})();

/* The members form of the lead's project page: POST / DELETE /api/v1/projects/<pid>/members,
 * then a reload (the table with everyone's progress is rendered by the server). */
(function () {
  'use strict';

  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : '';
  }

  function projectMembers() {
    return {
      names: '', busy: false, error: '',
      init: function () {
        var self = this;
        this.base = this.$el.dataset.api + '/projects/' + this.$el.dataset.projectId + '/members';
        this.$el.addEventListener('click', function (e) {
          var b = e.target.closest('button[data-member-remove], button[data-member-add]');
          if (!b) return;
          if (b.dataset.memberRemove) self.send('DELETE', '/' + encodeURIComponent(b.dataset.memberRemove));
          else self.send('POST', '', { usernames: [b.dataset.memberAdd] });
        });
      },
      add: function (e) {
        if (e && e.preventDefault) e.preventDefault();
        var names = this.names.split(/[\s,]+/).filter(Boolean);
        if (!names.length) { this.error = 'Type at least one username.'; return; }
        this.send('POST', '', { usernames: names });
      },
      send: function (method, path, body) {
        var self = this;
        var opts = { method: method, credentials: 'same-origin',
                     headers: { 'X-CSRF-Token': csrf(), Accept: 'application/json' } };
        if (body) { opts.headers['Content-Type'] = 'application/json'; opts.body = JSON.stringify(body); }
        this.busy = true;
        this.error = '';
        fetch(this.base + path, opts)
          .then(function (r) { return r.json().then(function (d) { return [r.status, d]; }); })
          .then(function (res) {
            self.busy = false;
            if (res[0] !== 200) { self.error = res[1].error || 'The change was refused.'; return; }
            window.location.reload();
          })
          .catch(function (err) { self.busy = false; self.error = 'Could not reach the server: ' + err.message; });
      },
    };
  }

  document.addEventListener('alpine:init', function () { window.Alpine.data('projectMembers', projectMembers); });
})();

/* The model card of the lead's project page: train a new version (POST .../train, run by the
 * server's background process), its progress and the other background jobs (GET .../jobs,
 * polled while one is queued or running), the trained versions with their held-out scores,
 * and which one suggests (PUT .../model). */
(function () {
  'use strict';
  var POLL_MS = 2000;

  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : '';
  }

  function pct(x) { return Math.round((x || 0) * 100) + ' %'; }
  function f2(x) { return x == null ? '–' : Number(x).toFixed(2); }

  function projectModels() {
    return {
      busy: false, error: '', note: '', active: null,
      init: function () {
        var self = this;
        this.base = this.$el.dataset.api + '/projects/' + this.$el.dataset.projectId;
        this.$el.addEventListener('click', function (e) {
          var b = e.target.closest('button[data-use-version]');
          if (b) self.use(Number(b.dataset.useVersion));
        });
        this.refresh();
      },
      call: function (method, path, body) {
        var opts = { method: method, credentials: 'same-origin',
                     headers: { 'X-CSRF-Token': csrf(), Accept: 'application/json' } };
        if (body !== undefined) { opts.headers['Content-Type'] = 'application/json'; opts.body = JSON.stringify(body); }
        return fetch(this.base + path, opts)
          .then(function (r) { return r.json().then(function (d) { return [r.status, d]; }); });
      },
      train: function () {
        var self = this;
        this.busy = true; this.error = '';
        this.call('POST', '/train').then(function (res) {
          self.busy = false;
          if (res[0] !== 202) { self.error = res[1].error || 'Training was refused.'; return; }
          self.note = 'Training queued: the server trains in the background; its progress shows below.';
          self.refresh();
        }).catch(function (e) { self.busy = false; self.error = 'Could not reach the server: ' + e.message; });
      },
      use: function (n) {
        var self = this;
        this.call('PUT', '/model', { version: n }).then(function (res) {
          if (res[0] !== 200) { self.error = res[1].error || 'The change was refused.'; return; }
          self.note = 'Version ' + n + ' suggests now; its predictions are computed in the background.';
          self.refresh();
        }).catch(function (e) { self.error = 'Could not reach the server: ' + e.message; });
      },
      refresh: function () {
        var self = this;
        clearTimeout(this.timer);
        Promise.all([this.call('GET', '/jobs'), this.call('GET', '/models')]).then(function (res) {
          if (res[0][0] !== 200 || res[1][0] !== 200) { self.error = (res[0][1].error || res[1][1].error); return; }
          self.renderJobs(res[0][1].items);
          self.active = res[1][1].model;
          self.renderVersions(res[1][1].items);
          var moving = res[0][1].items.some(function (j) { return j.state === 'queued' || j.state === 'running'; });
          if (moving) self.timer = setTimeout(function () { self.refresh(); }, POLL_MS);
        }).catch(function (e) { self.error = 'Could not reach the server: ' + e.message; });
      },
      renderJobs: function (items) {
        var tbody = this.$refs.jobs;
        tbody.textContent = '';
        items.slice(0, 6).forEach(function (j) {
          var tr = document.createElement('tr');
          tr.dataset.jobState = j.state;
          function td(text, cls) { var c = document.createElement('td'); c.textContent = text; if (cls) c.className = cls; tr.appendChild(c); return c; }
          td(j.kind + (j.params && j.params.version ? ' v' + j.params.version : ''));
          td(j.state, 'state-' + j.state);
          var bar = td('');
          var p = document.createElement('progress');
          p.max = 1; p.value = j.progress || 0;
          bar.appendChild(p);
          bar.appendChild(document.createTextNode(' ' + pct(j.progress)));
          td(j.error || j.message || '', j.error ? 'job-error' : 'muted');
          tbody.appendChild(tr);
        });
        if (!items.length) {
          var tr = document.createElement('tr'), c = document.createElement('td');
          c.colSpan = 4; c.className = 'muted'; c.textContent = 'No background work yet.';
          tr.appendChild(c); tbody.appendChild(tr);
        }
      },
      renderVersions: function (items) {
        var tbody = this.$refs.versions, self = this;
        tbody.textContent = '';
        items.slice().reverse().forEach(function (v) {
          var tr = document.createElement('tr');
          tr.dataset.version = v.number;
          function td(text, cls) { var c = document.createElement('td'); c.textContent = text; if (cls) c.className = cls; tr.appendChild(c); return c; }
          var sc = v.scores || {};
          var name = td('v' + v.number + ' ');
          if (v.number === self.active) {
            var on = document.createElement('strong');
            on.className = 'state-done'; on.textContent = 'suggests';
            name.appendChild(on);
          } else {
            var b = document.createElement('button');
            b.type = 'button'; b.className = 'link'; b.dataset.useVersion = v.number; b.textContent = 'use';
            name.appendChild(b);
          }
          var from = document.createElement('small');
          from.className = 'muted';
          from.textContent = ' from ' + v.source;
          name.appendChild(document.createElement('br'));
          name.appendChild(from);
          td(f2((sc.overall || {}).f), 'num');
          var offered = v.offered_labels || [], live = v.live || {};
          var cell = td('', 'muted');
          Object.keys(sc.labels || {}).forEach(function (k, i) {
            var line = document.createElement('div'), lv = live[k] || {};
            line.dataset.label = k;
            line.textContent = k + ' ' + f2(sc.labels[k].f) + (offered.indexOf(k) >= 0 ? ' ✓' : ' ✗') +
              (lv.reviewed ? ' · live ' + (lv.precision == null ? '–' : f2(lv.precision)) + ' over ' + lv.reviewed : '');
            line.title = lv.why || '';
            var why = document.createElement('small');
            why.textContent = lv.why ? ' (' + (lv.active ? 'suggests: ' : 'does not suggest: ') + lv.why + ')' : '';
            line.appendChild(why);
            cell.appendChild(line);
          });
          if (Object.keys(sc.labels || {}).length && !offered.length) {
            var none = document.createElement('div');
            none.textContent = 'No label good enough to suggest yet.';
            cell.appendChild(none);
          }
          td(String(v.predicted_documents), 'num');
          tbody.appendChild(tr);
        });
        if (!items.length) {
          var tr = document.createElement('tr'), c = document.createElement('td');
          c.colSpan = 4; c.className = 'muted'; c.textContent = 'No model yet: train one from the gold, majority or imported annotations.';
          tr.appendChild(c); tbody.appendChild(tr);
        }
      },
    };
  }

  document.addEventListener('alpine:init', function () { window.Alpine.data('projectModels', projectModels); });
})();
