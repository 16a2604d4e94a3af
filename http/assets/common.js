// The mall's pages, shared part: translations, building the DOM (text only, never markup),
// the API client with its session (silent token refresh, the end of a session), the header.
// The storefront (shop.js), the merchant console (merchant.js) and the admin console
// (admin.js) register themselves in Mall.pages; the path picks one.
'use strict';

const Mall = (() => {
  const DICT = {
    en: {
      lang_name: 'English', title_shop: 'Mall', title_merchant: 'Mall · Merchant console',
      title_admin: 'Mall · Admin console', skip: 'Skip to content', brand: 'Mall',
      nav: 'Main', nav_shop: 'Shop', nav_cart: 'Cart', nav_orders: 'Orders',
      nav_merchant: 'Merchant console', nav_admin: 'Admin console', account: 'Account',
      language: 'Language', email: 'Email', password: 'Password', name: 'Name',
      login: 'Log in', register: 'Register', logout: 'Log out',
      login_title: 'Log in', register_title: 'Create an account',
      no_account: 'New here?', have_account: 'Already have an account?',
      hello: 'Signed in as {name}', logged_out: 'You are logged out.',
      registered: 'Welcome, {name}! Your account is ready.',
      session_ended: 'Your session has ended (you were signed out elsewhere or it expired). Please log in again.',
      session_banned: 'Your session has ended: your account has been suspended.',
      password_hint: '8 to 128 characters',
      e_network: 'The shop cannot be reached. Check your connection and try again.',
      e_invalid_credentials: 'Wrong email or password.',
      e_email_taken: 'An account with this email already exists.',
      e_user_banned: 'This account has been suspended.',
      e_card_declined: 'The card was declined. The order is still waiting for payment: try another card.',
      e_insufficient_stock: 'Not enough stock: only {available} left of one of the products.',
      e_cart_empty: 'Your cart is empty.', e_forbidden: 'You are not allowed to do this.',
      e_not_found: 'Not found.', e_rate_limited: 'Too many requests: wait a moment and try again.',
      e_unavailable: 'The shop is busy right now: try again in a moment.',
      e_invalid_state: 'This can no longer be done: the order or payment has changed.',
      e_unauthenticated: 'Please log in.',
      e_fields: 'Please correct the marked fields.',
      required: 'Required', loading: 'Loading…', retry: 'Try again',
    },
    zh: {
      lang_name: '中文', title_shop: '商城', title_merchant: '商城 · 商家后台',
      title_admin: '商城 · 管理后台', skip: '跳到正文', brand: '商城',
      nav: '主导航', nav_shop: '商店', nav_cart: '购物车', nav_orders: '订单',
      nav_merchant: '商家后台', nav_admin: '管理后台', account: '账户',
      language: '语言', email: '邮箱', password: '密码', name: '姓名',
      login: '登录', register: '注册', logout: '退出登录',
      login_title: '登录', register_title: '创建账户',
      no_account: '第一次来？', have_account: '已有账户？',
      hello: '已登录：{name}', logged_out: '您已退出登录。',
      registered: '欢迎，{name}！您的账户已创建。',
      session_ended: '您的会话已结束（已在别处退出或已过期），请重新登录。',
      session_banned: '您的会话已结束：您的账户已被封禁。',
      password_hint: '8 至 128 个字符',
      e_network: '无法连接商城，请检查网络后重试。',
      e_invalid_credentials: '邮箱或密码错误。',
      e_email_taken: '该邮箱已注册。',
      e_user_banned: '该账户已被封禁。',
      e_card_declined: '银行卡被拒绝。订单仍在等待付款，请换一张卡。',
      e_insufficient_stock: '库存不足：其中一件商品只剩 {available} 件。',
      e_cart_empty: '购物车是空的。', e_forbidden: '您无权进行此操作。',
      e_not_found: '未找到。', e_rate_limited: '请求过于频繁，请稍后再试。',
      e_unavailable: '商城繁忙，请稍后再试。',
      e_invalid_state: '此操作已无法进行：订单或支付状态已改变。',
      e_unauthenticated: '请先登录。',
      e_fields: '请更正标出的字段。',
      required: '必填', loading: '加载中…', retry: '重试',
    },
  };

  const query = new URLSearchParams(location.search);
  const chosenLang = query.get('lang') === 'zh' || query.get('lang') === 'en' ? query.get('lang') : null;

  function pickLang() {
    if (chosenLang) return chosenLang;
    const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
    for (const l of langs) {
      const p = String(l).toLowerCase();
      if (p.startsWith('zh')) return 'zh';
      if (p.startsWith('en')) return 'en';
    }
    return 'en';
  }
  const lang = pickLang();

  /** Registers more translations (each page brings its own). */
  function words(more) {
    for (const l of Object.keys(more)) Object.assign(DICT[l], more[l]);
  }

  /** The text for `key` in the page's language, with `{var}`s filled in. */
  function t(key, vars) {
    let s = DICT[lang][key];
    if (s === undefined) s = DICT.en[key];
    if (s === undefined) s = key;
    if (vars) for (const k of Object.keys(vars)) s = s.split('{' + k + '}').join(String(vars[k]));
    return s;
  }

  /** A link to another page of the mall that keeps an explicitly chosen language. */
  function href(path, extra) {
    const p = new URLSearchParams();
    if (chosenLang) p.set('lang', chosenLang);
    const qs = p.toString();
    return path + (qs ? '?' + qs : '') + (extra || '');
  }

  // ---- DOM: every piece of text becomes a text node, never markup.
  function append(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      el.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }

  /** `h('button', {type: 'submit', onclick: f}, 'text', child…)`. */
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null || v === false) continue;
        if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'class') el.className = v;
        else if (k === 'value') el.value = v;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    return append(el, kids);
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  let uniq = 0;
  /** A new id for an element. */
  function uid(prefix) {
    uniq += 1;
    return (prefix || 'f') + '-' + uniq;
  }

  /**
   * A labelled form field: `{label, name, field (the API's field name), type, value, hint,
   * required, textarea, options: [[value, text]], attrs}`. The wrapper has `.input` and `.err`.
   */
  function field(o) {
    const id = uid(o.name || 'field');
    const errId = id + '-err';
    const hintId = o.hint ? id + '-hint' : null;
    const attrs = Object.assign({
      id, name: o.name, 'data-field': o.field || o.name, required: o.required || null,
      'aria-describedby': [hintId, errId].filter(Boolean).join(' '),
    }, o.attrs || {});
    let input;
    if (o.options) {
      input = h('select', attrs, o.options.map(([v, text]) => h('option', { value: v, selected: String(v) === String(o.value) || null }, text)));
    } else if (o.textarea) {
      input = h('textarea', Object.assign(attrs, { rows: 3 }));
      input.value = o.value || '';
    } else {
      input = h('input', Object.assign(attrs, { type: o.type || 'text' }));
      if (o.value !== undefined && o.value !== null) input.value = o.value;
    }
    const err = h('p', { class: 'err', id: errId });
    const wrap = h('div', { class: 'field' + (o.wide ? ' wide' : '') },
      h('label', { for: id }, o.label), input,
      hintId ? h('p', { class: 'hint', id: hintId }, o.hint) : null, err);
    wrap.input = input;
    wrap.err = err;
    return wrap;
  }

  /** A form with a place for a message about the whole form (`.formErr`). */
  function form(props, ...kids) {
    const formErr = h('p', { class: 'form-err', role: 'alert' });
    const f = h('form', Object.assign({ novalidate: true }, props), formErr, ...kids);
    f.formErr = formErr;
    return f;
  }

  /** A message for an API error, in the page's language. */
  function message(error) {
    if (!error) return '';
    const key = 'e_' + error.code;
    if (error.code === 'insufficient_stock') {
      return t(key, { available: error.details && error.details.available !== undefined ? error.details.available : 0 });
    }
    if (DICT.en[key] !== undefined) return t(key);
    return error.message || error.code;
  }

  /** Clears the messages of a form. */
  function clearErrors(f) {
    for (const e of f.querySelectorAll('.err')) e.textContent = '';
    for (const i of f.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
    if (f.formErr) f.formErr.textContent = '';
  }

  function fieldMatches(key, name) {
    return key === name || key.endsWith('.' + name) || name.endsWith('.' + key);
  }

  /** Shows an API error: next to each field it names, else (and also) above the form. */
  function showErrors(f, error) {
    clearErrors(f);
    const fields = error && error.details && error.details.fields;
    let placed = false;
    if (fields && typeof fields === 'object') {
      for (const [key, why] of Object.entries(fields)) {
        const input = [...f.querySelectorAll('[data-field]')].find((i) => fieldMatches(key, i.getAttribute('data-field')));
        if (!input) continue;
        const err = document.getElementById(input.id + '-err');
        if (err) err.textContent = String(why);
        input.setAttribute('aria-invalid', 'true');
        if (!placed) input.focus();
        placed = true;
      }
    }
    if (f.formErr) f.formErr.textContent = placed ? t('e_fields') + ' ' + message(error) : message(error);
  }

  /** Shows a client-side problem with one field. */
  function fieldError(f, input, text) {
    const err = document.getElementById(input.id + '-err');
    if (err) err.textContent = text;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }

  /** A random Idempotency-Key. */
  function newKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  }

  // ---- money and time
  /** Cents as a price in the shop's currency. */
  function money(cents) {
    const n = Number(cents) || 0;
    const sign = n < 0 ? '-' : '';
    const a = Math.abs(n);
    const whole = Math.floor(a / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    return sign + '¥' + whole + '.' + String(a % 100).padStart(2, '0');
  }

  /** "12.5" yuan as 1250 cents, or null. */
  function parseYuan(text) {
    const m = /^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$/.exec(String(text));
    if (!m) return null;
    return Number(m[1]) * 100 + Number((m[2] || '0').padEnd(2, '0'));
  }

  function yuan(cents) {
    const n = Number(cents) || 0;
    return Math.floor(n / 100) + '.' + String(n % 100).padStart(2, '0');
  }

  function when(iso) {
    if (!iso) return '';
    try {
      return new Date(iso).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB', { dateStyle: 'medium', timeStyle: 'short' });
    } catch (_) {
      return iso;
    }
  }

  // ---- session and API
  const KEY = 'mall.refresh';
  const S = { access: null, refresh: null, user: null, refreshing: null, timer: null, listeners: [] };
  try {
    S.refresh = sessionStorage.getItem(KEY);
  } catch (_) {
    S.refresh = null;
  }

  function store(value) {
    try {
      if (value) sessionStorage.setItem(KEY, value);
      else sessionStorage.removeItem(KEY);
    } catch (_) { /* private mode: the session lives in memory only */ }
  }

  function setTokens(d) {
    S.access = d.access_token;
    S.refresh = d.refresh_token;
    store(S.refresh);
    clearTimeout(S.timer);
    const secs = Math.max(5, Number(d.expires_in || 60) - 60);
    S.timer = setTimeout(() => { refresh(); }, secs * 1000);
  }

  function dropTokens() {
    S.access = null;
    S.refresh = null;
    S.user = null;
    clearTimeout(S.timer);
    store(null);
  }

  async function request(method, path, body, opts) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (opts.idem) headers['Idempotency-Key'] = opts.idem;
    if (opts.auth && S.access) headers.Authorization = 'Bearer ' + S.access;
    let res;
    try {
      res = await fetch(path, {
        method, headers, credentials: 'omit', cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (_) {
      return { ok: false, status: 0, error: { code: 'network', message: t('e_network') } };
    }
    let data = null;
    if (res.status !== 204) {
      try {
        data = await res.json();
      } catch (_) {
        data = null;
      }
    }
    if (res.ok) return { ok: true, status: res.status, data };
    const error = (data && data.error) || { code: 'http_' + res.status, message: res.statusText };
    return { ok: false, status: res.status, error, data };
  }

  /** Renews the token pair; one renewal at a time (a refresh token is spent by its use). */
  function refresh() {
    if (!S.refreshing) {
      S.refreshing = (async () => {
        const rt = S.refresh;
        if (!rt) return false;
        const r = await request('POST', '/api/v1/auth/refresh', { refresh_token: rt }, {});
        if (r.ok) {
          setTokens(r.data);
          return true;
        }
        if (r.status === 0 || r.status === 429 || r.status >= 500) return false;
        endSession(r.error.code === 'user_banned' ? 'banned' : 'ended');
        return false;
      })().finally(() => { S.refreshing = null; });
    }
    return S.refreshing;
  }

  /**
   * Calls the API: `{ok, status, data, error}`. With `auth`, sends the access token, renews it
   * once when it is refused, and ends the session when the server says it is over.
   */
  async function api(method, path, body, opts) {
    const o = opts || {};
    if (o.auth && !S.access && S.refresh) await refresh();
    let r = await request(method, path, body, o);
    if (o.auth && r.status === 401 && S.refresh && (await refresh())) {
      r = await request(method, path, body, o);
    }
    if (o.auth && (S.access || S.refresh)) {
      if (r.status === 403 && r.error.code === 'user_banned') endSession('banned');
      else if (r.status === 401) endSession('ended');
    }
    return r;
  }

  function loggedIn() {
    return !!(S.access || S.refresh);
  }

  function hasRole(role) {
    return !!(S.user && S.user.roles && S.user.roles.includes(role));
  }

  function onSession(f) {
    S.listeners.push(f);
  }

  function changed() {
    renderHeader();
    for (const f of S.listeners) f();
  }

  /** Shows a passing message. */
  function notice(text) {
    const n = document.getElementById('notice');
    n.textContent = text;
  }

  /** Shows (or, with '', hides) the lasting alert. */
  function alertBox(text) {
    const a = document.getElementById('alert');
    a.textContent = text;
    a.hidden = !text;
  }

  function endSession(reason) {
    if (!loggedIn()) return;
    dropTokens();
    alertBox(t(reason === 'banned' ? 'session_banned' : 'session_ended'));
    changed();
  }

  async function loadMe() {
    const r = await api('GET', '/api/v1/users/me', undefined, { auth: true });
    if (r.ok) S.user = r.data;
    return r;
  }

  async function login(email, password) {
    const r = await request('POST', '/api/v1/auth/login', { email, password }, {});
    if (!r.ok) return r;
    setTokens(r.data);
    alertBox('');
    await loadMe();
    changed();
    return r;
  }

  async function logout() {
    const rt = S.refresh;
    if (S.access) await request('POST', '/api/v1/auth/logout', rt ? { refresh_token: rt } : {}, { auth: true });
    dropTokens();
    notice(t('logged_out'));
    changed();
  }

  /** A log-in form; `done` runs after a successful login. */
  function loginForm(done) {
    const email = field({ label: t('email'), name: 'email', type: 'email', required: true, attrs: { autocomplete: 'username' } });
    const password = field({ label: t('password'), name: 'password', type: 'password', required: true, attrs: { autocomplete: 'current-password' } });
    const f = form({ class: 'card narrow', 'aria-label': t('login_title') },
      h('h2', null, t('login_title')), email, password,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('login'))));
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(f);
      if (!email.input.value.trim()) return fieldError(f, email.input, t('required'));
      if (!password.input.value) return fieldError(f, password.input, t('required'));
      const r = await login(email.input.value.trim(), password.input.value);
      if (!r.ok) return showErrors(f, r.error);
      if (done) done();
    });
    return f;
  }

  // ---- the header
  let page = 'shop';

  function renderHeader() {
    const top = clear(document.getElementById('top'));
    const links = [];
    links.push(h('a', { href: href('/', '#/') }, t('nav_shop')));
    if (page === 'shop' && loggedIn()) {
      links.push(h('a', { href: '#/cart' }, t('nav_cart')));
      links.push(h('a', { href: '#/orders' }, t('nav_orders')));
    }
    if (page === 'merchant' || hasRole('merchant') || hasRole('admin')) links.push(h('a', { href: href('/merchant') }, t('nav_merchant')));
    if (page === 'admin' || hasRole('admin')) links.push(h('a', { href: href('/admin') }, t('nav_admin')));
    for (const a of links) {
      const target = a.getAttribute('href').split('?')[0].split('#')[0];
      if ((target === '/' && page === 'shop') || target === '/' + page) a.setAttribute('aria-current', 'page');
    }
    const other = lang === 'zh' ? 'en' : 'zh';
    const langLink = h('a', { href: location.pathname + '?lang=' + other + location.hash, lang: other, hreflang: other }, DICT[other].lang_name);
    const account = h('div', { class: 'account' });
    if (loggedIn()) {
      if (S.user) account.append(h('span', { class: 'who' }, t('hello', { name: S.user.name })));
      account.append(h('button', { type: 'button', onclick: () => { logout(); } }, t('logout')));
    } else if (page === 'shop') {
      account.append(h('a', { href: '#/login', class: 'button' }, t('login')), h('a', { href: '#/register', class: 'button' }, t('register')));
    }
    append(top,
      [h('a', { class: 'brand', href: href('/', '#/') }, t('brand')),
        h('nav', { 'aria-label': t('nav') }, links),
        h('div', { class: 'lang', 'aria-label': t('language'), role: 'group' }, langLink),
        account]);
  }

  /** Registered pages: name -> {start()}. */
  const pages = {};

  async function boot() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    const path = location.pathname.replace(/\/+$/, '') || '/';
    page = path === '/merchant' ? 'merchant' : path === '/admin' ? 'admin' : 'shop';
    document.title = t('title_' + page);
    document.getElementById('skip').textContent = t('skip');
    renderHeader();
    if (S.refresh && (await refresh())) await loadMe();
    renderHeader();
    // Notice at once when the session ends elsewhere (logout, ban, closed account).
    setInterval(() => {
      if (S.access) api('GET', '/api/v1/auth/verify', undefined, { auth: true });
    }, 3000);
    const p = pages[page];
    if (p) p.start();
  }

  document.addEventListener('DOMContentLoaded', () => { boot(); });

  return {
    t, words, lang, href, h, clear, append, field, form, uid, message, showErrors, clearErrors,
    fieldError, newKey, money, parseYuan, yuan, when, api, refresh, login, logout, loadMe,
    loggedIn, hasRole, onSession, changed, notice, alertBox, loginForm, pages, renderHeader,
    user: () => S.user,
  };
})();
