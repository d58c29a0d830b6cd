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
          var open = td('');
          var a = document.createElement('a');
          a.href = self.docUrl.replace(/\/0\/annotate$/, '/' + d.id + '/annotate');
          a.textContent = 'open';
          open.appendChild(a);
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
