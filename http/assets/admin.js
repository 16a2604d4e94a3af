// The admin console at `/admin`: users (find by email, roles, ban and unban, close), roles and
// their permission rules (regular expressions, allow or deny), the node's health, and links to
// the API documentation and the metrics.
'use strict';

(() => {
  const { t, h, clear, field, form, api } = Mall;

  Mall.words({
    en: {
      a_users: 'Users', a_find: 'Find users', a_none: 'No user matches.', a_roles_field: 'Roles',
      a_roles_hint: 'Role names, separated by commas', a_save_roles: 'Save roles', a_reason: 'Reason',
      a_ban: 'Ban', a_unban: 'Unban', a_close: 'Close account', a_confirm: 'Really close?',
      a_active: 'Active', a_banned: 'Banned: {reason}', a_closed: 'Closed', a_user: 'User {email}',
      a_roles_title: 'Roles and permissions', a_method: 'Method', a_path: 'Path (regular expression)',
      a_effect: 'Effect', a_allow: 'allow', a_deny: 'deny', a_add_rule: 'Add rule', a_remove_rule: 'Remove rule',
      a_save_role: 'Save role', a_delete_role: 'Delete role', a_new_role: 'New role', a_role_name: 'Role name',
      a_create_role: 'Create role', a_role: 'Role {name}', a_rule: 'Rule {n}',
      a_health: 'Health of this node', a_refresh: 'Check again', a_docs: 'API documentation', a_metrics: 'Metrics',
      a_saved: 'Saved.', a_banned_ok: '{email} is banned.', a_unbanned_ok: '{email} may log in again.',
      a_closed_ok: 'The account of {email} is closed.', a_role_saved: 'Role {name} saved.', a_role_deleted: 'Role {name} deleted.',
      a_not_admin: 'This account is not an administrator.', a_login: 'Log in with an administrator account.',
      a_database: 'Database', a_redis: 'Redis', a_registry: 'Cluster registry', a_down: 'The node is not ready.',
      a_page: 'Page {p} of {n}',
    },
    zh: {
      a_users: '用户', a_find: '查找用户', a_none: '没有匹配的用户。', a_roles_field: '角色',
      a_roles_hint: '角色名，用逗号分隔', a_save_roles: '保存角色', a_reason: '原因',
      a_ban: '封禁', a_unban: '解封', a_close: '注销账户', a_confirm: '确认注销？',
      a_active: '正常', a_banned: '已封禁：{reason}', a_closed: '已注销', a_user: '用户 {email}',
      a_roles_title: '角色与权限', a_method: '方法', a_path: '路径（正则表达式）',
      a_effect: '效果', a_allow: '允许', a_deny: '拒绝', a_add_rule: '添加规则', a_remove_rule: '删除规则',
      a_save_role: '保存角色', a_delete_role: '删除角色', a_new_role: '新角色', a_role_name: '角色名',
      a_create_role: '创建角色', a_role: '角色 {name}', a_rule: '规则 {n}',
      a_health: '本节点健康状况', a_refresh: '重新检查', a_docs: 'API 文档', a_metrics: '监控指标',
      a_saved: '已保存。', a_banned_ok: '已封禁 {email}。', a_unbanned_ok: '{email} 可以重新登录了。',
      a_closed_ok: '已注销 {email} 的账户。', a_role_saved: '已保存角色 {name}。', a_role_deleted: '已删除角色 {name}。',
      a_not_admin: '此账户不是管理员。', a_login: '请使用管理员账户登录。',
      a_database: '数据库', a_redis: 'Redis', a_registry: '集群注册中心', a_down: '本节点未就绪。',
      a_page: '第 {p} 页，共 {n} 页',
    },
  });

  const main = () => document.getElementById('main');
  const users = { email: '', page: 1 };

  function splitNames(text) {
    return text.split(/[,，\s]+/).map((s) => s.trim()).filter(Boolean);
  }

  // ---- users
  function userCard(u, reload) {
    const status = u.closed_at ? t('a_closed') : u.banned ? t('a_banned', { reason: u.ban_reason || '' }) : t('a_active');
    const f = form({ class: 'user-edit' });
    const roles = field({ label: t('a_roles_field'), name: 'roles', hint: t('a_roles_hint'), value: (u.roles || []).join(', ') });
    const reason = field({ label: t('a_reason'), name: 'reason' });
    const closeBtn = h('button', { type: 'button', class: 'danger' }, t('a_close'));
    let armed = false;
    const act = async (method, path, body, ok) => {
      const r = await api(method, path, body, { auth: true });
      if (!r.ok) return Mall.showErrors(f, r.error);
      Mall.notice(ok);
      return reload();
    };
    const base = '/api/v1/admin/users/' + encodeURIComponent(u.id);
    const actions = h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: () => act('PUT', base + '/roles', { roles: splitNames(roles.input.value) }, t('a_saved')) }, t('a_save_roles')));
    if (!u.closed_at) {
      if (u.banned) {
        actions.append(h('button', { type: 'button', onclick: () => act('DELETE', base + '/ban', undefined, t('a_unbanned_ok', { email: u.email })) }, t('a_unban')));
      } else {
        actions.append(h('button', { type: 'button', class: 'danger', onclick: () => act('POST', base + '/ban', { reason: reason.input.value.trim() }, t('a_banned_ok', { email: u.email })) }, t('a_ban')));
      }
      closeBtn.addEventListener('click', () => {
        if (!armed) {
          armed = true;
          closeBtn.textContent = t('a_confirm');
          return;
        }
        act('DELETE', base, undefined, t('a_closed_ok', { email: u.email }));
      });
      actions.append(closeBtn);
    }
    f.append(h('div', { class: 'fields' }, roles, u.banned || u.closed_at ? null : reason), actions);
    f.addEventListener('submit', (ev) => ev.preventDefault());
    return h('article', { class: 'card user', 'aria-label': t('a_user', { email: u.email }) },
      h('h3', null, u.email), h('p', null, u.name + ' · ' + status), f);
  }

  async function usersSection(box) {
    const email = field({ label: t('email'), name: 'email', type: 'search', value: users.email });
    const f = form({ role: 'search', class: 'filters' }, email, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('a_find'))));
    const results = h('div', { class: 'results' });
    const load = async () => {
      const p = new URLSearchParams({ page: String(users.page), page_size: '20' });
      if (users.email) p.set('email', users.email);
      const r = await api('GET', '/api/v1/admin/users?' + p.toString(), undefined, { auth: true });
      clear(results);
      if (!r.ok) return results.append(h('p', { class: 'form-err', role: 'alert' }, Mall.message(r.error)));
      if (!r.data.items.length) return results.append(h('p', null, t('a_none')));
      for (const u of r.data.items) results.append(userCard(u, load));
      const pages = Math.max(1, Math.ceil(r.data.total / r.data.page_size));
      if (pages > 1) {
        results.append(h('nav', { class: 'pager', 'aria-label': t('a_users') },
          h('button', { type: 'button', disabled: users.page <= 1 || null, onclick: () => { users.page -= 1; load(); } }, '‹'),
          h('span', null, t('a_page', { p: users.page, n: pages })),
          h('button', { type: 'button', disabled: users.page >= pages || null, onclick: () => { users.page += 1; load(); } }, '›')));
      }
      return null;
    };
    f.addEventListener('submit', (ev) => {
      ev.preventDefault();
      users.email = email.input.value.trim();
      users.page = 1;
      load();
    });
    box.append(h('h2', null, t('a_users')), f, results);
    await load();
  }

  // ---- roles
  function ruleRow(rule, i, onRemove) {
    const methods = ['*', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
    const method = field({ label: t('a_method'), name: 'method', field: 'permissions[' + i + '].method', value: rule.method, options: methods.map((m) => [m, m]) });
    const path = field({ label: t('a_path'), name: 'path', field: 'permissions[' + i + ']', value: rule.path });
    const effect = field({ label: t('a_effect'), name: 'effect', field: 'permissions[' + i + '].effect', value: rule.effect, options: [['allow', t('a_allow')], ['deny', t('a_deny')]] });
    const row = h('fieldset', { class: 'rule' }, h('legend', null, t('a_rule', { n: i + 1 })), h('div', { class: 'fields' }, method, path, effect),
      h('button', { type: 'button', class: 'link', onclick: onRemove }, t('a_remove_rule')));
    row.read = () => ({ method: method.input.value, path: path.input.value, effect: effect.input.value });
    return row;
  }

  function roleEditor(role, reload) {
    let rules = role.permissions.map((p) => ({ method: p.method, path: p.path, effect: p.effect }));
    const f = form({ class: 'card role', 'aria-label': t('a_role', { name: role.name }) });
    const draw = () => {
      const kids = [...f.childNodes].filter((n) => n !== f.formErr);
      for (const k of kids) f.removeChild(k);
      const rows = rules.map((r, i) => ruleRow(r, i, () => { rules = collect(); rules.splice(i, 1); draw(); }));
      f.collect = () => rows.map((r) => r.read());
      f.append(h('h3', null, role.name), ...rows,
        h('div', { class: 'actions' },
          h('button', { type: 'button', onclick: () => { rules = collect(); rules.push({ method: 'GET', path: '/api/v1/', effect: 'allow' }); draw(); } }, t('a_add_rule')),
          h('button', { type: 'submit', class: 'primary' }, t('a_save_role')),
          role.name === 'admin' ? null : h('button', {
            type: 'button', class: 'danger',
            onclick: async () => {
              const r = await api('DELETE', '/api/v1/admin/roles/' + encodeURIComponent(role.name), undefined, { auth: true });
              if (!r.ok) return Mall.showErrors(f, r.error);
              Mall.notice(t('a_role_deleted', { name: role.name }));
              return reload();
            },
          }, t('a_delete_role'))));
    };
    const collect = () => (f.collect ? f.collect() : rules);
    draw();
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      rules = collect();
      const r = await api('PUT', '/api/v1/admin/roles/' + encodeURIComponent(role.name), { permissions: rules }, { auth: true });
      if (!r.ok) return Mall.showErrors(f, r.error);
      Mall.notice(t('a_role_saved', { name: role.name }));
      return reload();
    });
    return f;
  }

  async function rolesSection(box) {
    const list = h('div', { class: 'roles' });
    const load = async () => {
      const r = await api('GET', '/api/v1/admin/roles', undefined, { auth: true });
      clear(list);
      if (!r.ok) return list.append(h('p', { class: 'form-err', role: 'alert' }, Mall.message(r.error)));
      const roles = Array.isArray(r.data) ? r.data : r.data.items || [];
      for (const role of roles) list.append(roleEditor(role, load));
      return null;
    };
    const name = field({ label: t('a_role_name'), name: 'role_name', field: 'name', attrs: { maxlength: 64 } });
    const f = form({ class: 'card', 'aria-label': t('a_new_role') }, h('h3', null, t('a_new_role')), name,
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, t('a_create_role'))));
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      Mall.clearErrors(f);
      const n = name.input.value.trim();
      if (!n) return Mall.fieldError(f, name.input, t('required'));
      const r = await api('PUT', '/api/v1/admin/roles/' + encodeURIComponent(n), { permissions: [] }, { auth: true });
      if (!r.ok) return Mall.showErrors(f, r.error);
      name.input.value = '';
      Mall.notice(t('a_role_saved', { name: n }));
      return load();
    });
    box.append(h('h2', null, t('a_roles_title')), list, f);
    await load();
  }

  // ---- health
  async function healthSection(box) {
    const out = h('dl', { class: 'health', 'aria-live': 'polite' });
    const load = async () => {
      const r = await api('GET', '/readyz');
      clear(out);
      const d = r.data || {};
      for (const k of ['database', 'redis', 'registry']) {
        if (d[k] !== undefined) out.append(h('dt', null, t('a_' + k)), h('dd', { class: 'h-' + d[k] }, d[k]));
      }
      if (!r.ok) out.append(h('dt', null, '!'), h('dd', { class: 'h-down' }, t('a_down')));
    };
    box.append(h('h2', null, t('a_health')), out,
      h('div', { class: 'actions' }, h('button', { type: 'button', onclick: load }, t('a_refresh')),
        h('a', { href: '/docs/' }, t('a_docs')), h('a', { href: '/metrics' }, t('a_metrics'))));
    await load();
  }

  async function render() {
    const m = clear(main());
    if (!Mall.loggedIn()) {
      m.append(h('h1', null, t('title_admin')), h('p', null, t('a_login')), Mall.loginForm(null));
      return;
    }
    if (!Mall.user()) await Mall.loadMe();
    if (!Mall.hasRole('admin')) {
      m.append(h('h1', null, t('title_admin')), h('p', { class: 'form-err', role: 'alert' }, t('a_not_admin')));
      return;
    }
    const u = h('section', { class: 'panel', 'aria-label': t('a_users') });
    const r = h('section', { class: 'panel', 'aria-label': t('a_roles_title') });
    const hl = h('section', { class: 'panel', 'aria-label': t('a_health') });
    m.append(h('h1', null, t('title_admin')), u, r, hl);
    await Promise.all([usersSection(u), rolesSection(r), healthSection(hl)]);
  }

  Mall.pages.admin = {
    start() {
      Mall.onSession(() => { render(); });
      render();
    },
  };
})();
