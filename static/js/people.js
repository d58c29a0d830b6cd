/* people.js: the admin's People page (GET/POST /api/v1/users, PATCH /api/v1/users/<name>,
 * POST /api/v1/users/<name>/password) and everyone's Account page (POST /api/v1/me/password).
 * Alpine CSP build: only property and method names in attributes; rows built with textContent. */
(function () {
  'use strict';

  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : '';
  }

  function call(method, url, body) {
    var opts = { method: method, credentials: 'same-origin',
                 headers: { 'X-CSRF-Token': csrf(), Accept: 'application/json' } };
    if (body !== undefined) { opts.headers['Content-Type'] = 'application/json'; opts.body = JSON.stringify(body); }
    return fetch(url, opts).then(function (r) {
      return r.json().then(function (d) { return { status: r.status, body: d }; },
                           function () { return { status: r.status, body: { error: 'The server answered ' + r.status + '.' } }; });
    });
  }

  function fieldOf(body) {
    var d = body && body.details && body.details[0];
    return d && d.field;
  }

  function people() {
    return {
      username: '', role: 'annotator', busy: false, error: '', usernameError: '',
      secret: '', secretFor: '',
      init: function () {
        var self = this;
        this.api = this.$el.dataset.api;
        this.me = this.$el.dataset.me;
        this.$refs.rows.addEventListener('click', function (e) {
          var b = e.target.closest('button[data-action]');
          if (b) self.act(b.dataset.action, b.dataset.user);
        });
        this.$refs.rows.addEventListener('change', function (e) {
          var sel = e.target.closest('select[data-role-of]');
          if (sel) self.patch(sel.dataset.roleOf, { role: sel.value });
        });
        this.load();
      },
      load: function () {
        var self = this;
        call('GET', this.api + '/users').then(function (res) {
          if (res.status !== 200) { self.error = res.body.error; return; }
          self.render(res.body.items);
        }).catch(function (e) { self.error = 'Could not reach the server: ' + e.message; });
      },
      render: function (items) {
        var tbody = this.$refs.rows, me = this.me;
        tbody.textContent = '';
        items.forEach(function (u) {
          var tr = document.createElement('tr');
          tr.dataset.user = u.username;
          if (!u.active) tr.className = 'inactive';
          function td() { var c = document.createElement('td'); tr.appendChild(c); return c; }
          function button(text, action) {
            var b = document.createElement('button');
            b.type = 'button'; b.className = 'link'; b.textContent = text;
            b.dataset.action = action; b.dataset.user = u.username;
            return b;
          }
          td().textContent = u.username + (u.username === me ? ' (you)' : '');
          var roleCell = td();
          if (u.username === me) { roleCell.textContent = u.role; } else {
            var sel = document.createElement('select');
            sel.dataset.roleOf = u.username;
            sel.setAttribute('aria-label', 'role of ' + u.username);
            ['annotator', 'lead', 'admin'].forEach(function (r) {
              var o = document.createElement('option'); o.value = r; o.textContent = r;
              if (r === u.role) o.selected = true;
              sel.appendChild(o);
            });
            roleCell.appendChild(sel);
          }
          td().textContent = u.active ? 'active' : 'deactivated';
          var acts = td();
          acts.className = 'row-actions';
          acts.appendChild(button('Reset password', 'reset'));
          if (u.username !== me) acts.appendChild(button(u.active ? 'Deactivate' : 'Reactivate', u.active ? 'deactivate' : 'reactivate'));
          tbody.appendChild(tr);
        });
      },
      add: function (e) {
        if (e && e.preventDefault) e.preventDefault();
        var self = this;
        this.busy = true; this.error = ''; this.usernameError = '';
        call('POST', this.api + '/users', { username: this.username.trim(), role: this.role }).then(function (res) {
          self.busy = false;
          if (res.status !== 201) {
            if (fieldOf(res.body) === 'username') self.usernameError = res.body.error;
            else self.error = res.body.error;
            return;
          }
          self.username = '';
          self.show(res.body.username, res.body.password);
          self.load();
        }).catch(function (err) { self.busy = false; self.error = 'Could not reach the server: ' + err.message; });
      },
      act: function (action, name) {
        var self = this, url = this.api + '/users/' + encodeURIComponent(name);
        if (action === 'reset') {
          if (!window.confirm('Give ' + name + ' a new password? Their sessions end.')) return;
          call('POST', url + '/password').then(function (res) {
            if (res.status !== 200) { self.error = res.body.error; return; }
            self.show(res.body.username, res.body.password);
          });
        } else {
          this.patch(name, { active: action === 'reactivate' });
        }
      },
      patch: function (name, body) {
        var self = this;
        this.error = '';
        call('PATCH', this.api + '/users/' + encodeURIComponent(name), body).then(function (res) {
          if (res.status !== 200) self.error = res.body.error;
          self.load();
        }).catch(function (err) { self.error = 'Could not reach the server: ' + err.message; });
      },
      show: function (name, password) { this.secretFor = name; this.secret = password; },
      hideSecret: function () { this.secretFor = ''; this.secret = ''; },
    };
  }

  function account() {
    return {
      current: '', fresh: '', busy: false, done: false, error: '', currentError: '', newError: '',
      init: function () { this.api = this.$el.dataset.api; this.$el.dataset.ready = '1'; },
      save: function (e) {
        if (e && e.preventDefault) e.preventDefault();
        var self = this;
        this.busy = true; this.done = false; this.error = ''; this.currentError = ''; this.newError = '';
        call('POST', this.api + '/me/password', { current: this.current, new: this.fresh }).then(function (res) {
          self.busy = false;
          if (res.status !== 200) {
            var f = fieldOf(res.body);
            if (f === 'current') self.currentError = res.body.error;
            else if (f === 'new') self.newError = res.body.error;
            else self.error = res.body.error;
            return;
          }
          self.current = ''; self.fresh = ''; self.done = true;
        }).catch(function (err) { self.busy = false; self.error = 'Could not reach the server: ' + err.message; });
      },
    };
  }

  document.addEventListener('alpine:init', function () {
    window.Alpine.data('people', people);
    window.Alpine.data('account', account);
  });
})();
