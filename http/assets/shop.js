// The storefront at `/`: catalog (search, category, sort, pages), product page, register and
// log in, cart, checkout with an address and a card, orders with a countdown to the payment
// deadline, pay and cancel. Views are chosen by the location's hash (#/cart, #/orders, …).
'use strict';

(() => {
  const { t, h, clear, field, form, api, money, when } = Mall;

  Mall.words({
    en: {
      products: 'Products', search: 'Search', find: 'Find', category: 'Category', all: 'All categories',
      sort: 'Sort', newest: 'Newest', price_asc: 'Price: low to high', price_desc: 'Price: high to low',
      count: '{n} products', count1: '1 product', none: 'No products match.', prev: 'Previous page', next: 'Next page',
      page_of: 'Page {p} of {n}', pages: 'Pages', in_stock: '{n} in stock', sold_out: 'Sold out',
      quantity: 'Quantity', add: 'Add to cart', added: 'Added {n} × {name} to your cart.',
      view_cart: 'View cart', back: 'Back to the shop', categories: 'Categories',
      cart: 'Your cart', cart_empty: 'Your cart is empty.', remove: 'Remove', total: 'Total',
      checkout: 'Checkout', unavailable: 'No longer available: remove it to check out.',
      only_left: 'Only {n} left in stock.', line_total: 'Line total', unit: 'Unit price',
      address: 'Delivery address', recipient: 'Recipient', phone: 'Phone',
      line1: 'Address line 1', line2: 'Address line 2', city: 'City', postal: 'Postal code',
      country: 'Country', note: 'Note for the seller', card: 'Card', card_number: 'Card number',
      exp_month: 'Expiry month', exp_year: 'Expiry year', cvc: 'CVC', pay: 'Pay',
      optional: 'optional',
      test_cards: 'This shop uses a simulated payment gateway: 4242 4242 4242 4242 is approved, 4000 0000 0000 0002 is declined.',
      orders: 'Your orders', no_orders: 'You have no orders yet.', order: 'Order {id}',
      placed: 'Placed {when}', st_pending_payment: 'Waiting for payment', st_paid: 'Paid',
      st_cancelled: 'Cancelled', why_expired: 'the time to pay ran out', why_user: 'cancelled by you',
      why_admin: 'cancelled by the shop', why_account_closed: 'the account was closed',
      time_left: 'Time left to pay', cancel_order: 'Cancel order', paid_ok: 'Payment received: order {id} is paid.',
      cancelled_ok: 'Order {id} is cancelled.', declined: 'The card was declined. The order is still waiting for payment: try another card.',
      login_needed: 'Log in to see your cart and orders.', register_done: 'Welcome! You are logged in.',
      expiring: 'The time to pay has run out…',
    },
    zh: {
      products: '商品', search: '搜索', find: '查找', category: '分类', all: '全部分类',
      sort: '排序', newest: '最新', price_asc: '价格从低到高', price_desc: '价格从高到低',
      count: '共 {n} 件商品', count1: '共 1 件商品', none: '没有符合条件的商品。', prev: '上一页', next: '下一页',
      page_of: '第 {p} 页，共 {n} 页', pages: '分页', in_stock: '库存 {n} 件', sold_out: '已售罄',
      quantity: '数量', add: '加入购物车', added: '已将 {n} 件「{name}」加入购物车。',
      view_cart: '查看购物车', back: '返回商店', categories: '分类',
      cart: '我的购物车', cart_empty: '购物车是空的。', remove: '移除', total: '合计',
      checkout: '去结算', unavailable: '该商品已下架：请移除后再结算。',
      only_left: '库存仅剩 {n} 件。', line_total: '小计', unit: '单价',
      address: '收货地址', recipient: '收件人', phone: '电话',
      line1: '地址第一行', line2: '地址第二行', city: '城市', postal: '邮政编码',
      country: '国家', note: '给卖家的留言', card: '银行卡', card_number: '卡号',
      exp_month: '有效期月份', exp_year: '有效期年份', cvc: '安全码', pay: '支付',
      optional: '选填',
      test_cards: '本店使用模拟支付网关：4242 4242 4242 4242 会成功，4000 0000 0000 0002 会被拒绝。',
      orders: '我的订单', no_orders: '您还没有订单。', order: '订单 {id}',
      placed: '下单时间 {when}', st_pending_payment: '待付款', st_paid: '已付款',
      st_cancelled: '已取消', why_expired: '超时未支付', why_user: '您已取消',
      why_admin: '商城已取消', why_account_closed: '账户已注销',
      time_left: '剩余付款时间', cancel_order: '取消订单', paid_ok: '付款成功：订单 {id} 已支付。',
      cancelled_ok: '订单 {id} 已取消。', declined: '银行卡被拒绝。订单仍在等待付款，请换一张卡。',
      login_needed: '请登录后查看购物车和订单。', register_done: '欢迎！您已登录。',
      expiring: '付款时间已到…',
    },
  });

  const main = () => document.getElementById('main');
  const catalog = { q: '', category: '', sort: 'newest', page: 1 };
  let categories = null;
  let cleanup = [];

  function shortId(id) {
    return '#' + String(id).slice(-6);
  }

  /** A product's picture: only one served by this host (the page may load nothing else). */
  function thumb(p) {
    const url = p.image_url;
    if (typeof url === 'string' && url.startsWith('/') && !url.startsWith('//')) {
      return h('img', { class: 'thumb', src: url, alt: '' });
    }
    return h('div', { class: 'thumb', 'aria-hidden': 'true' }, (p.name || '?').trim().charAt(0).toUpperCase() || '?');
  }

  function show(title, ...kids) {
    const m = clear(main());
    m.append(h('h1', null, title), ...kids);
  }

  // ---- catalog
  async function loadCategories() {
    if (categories) return categories;
    const r = await api('GET', '/api/v1/products?page_size=100&sort=newest');
    const set = new Set();
    if (r.ok) for (const p of r.data.items) for (const c of p.categories || []) set.add(c);
    categories = [...set].sort();
    return categories;
  }

  async function catalogView() {
    const cats = await loadCategories();
    const search = field({ label: t('search'), name: 'q', type: 'search', value: catalog.q });
    const category = field({ label: t('category'), name: 'category', value: catalog.category, options: [['', t('all')], ...cats.map((c) => [c, c])] });
    const sort = field({ label: t('sort'), name: 'sort', value: catalog.sort, options: [['newest', t('newest')], ['price_asc', t('price_asc')], ['price_desc', t('price_desc')]] });
    const f = h('form', { role: 'search', class: 'filters' }, search, category, sort,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('find'))));
    const results = h('div', { class: 'results' });
    const apply = () => {
      catalog.q = search.input.value.trim();
      catalog.category = category.input.value;
      catalog.sort = sort.input.value;
      catalog.page = 1;
      loadResults(results);
    };
    f.addEventListener('submit', (ev) => { ev.preventDefault(); apply(); });
    category.input.addEventListener('change', apply);
    sort.input.addEventListener('change', apply);
    show(t('products'), f, results);
    await loadResults(results);
  }

  let searches = 0;

  async function loadResults(results) {
    searches += 1;
    const mine = searches;
    const p = new URLSearchParams({ sort: catalog.sort, page: String(catalog.page), page_size: '12' });
    if (catalog.q) p.set('q', catalog.q);
    if (catalog.category) p.set('category', catalog.category);
    const r = await api('GET', '/api/v1/products?' + p.toString());
    if (mine !== searches) return; // a newer search has been asked for
    clear(results);
    if (!r.ok) {
      results.append(h('p', { class: 'form-err', role: 'alert' }, Mall.message(r.error)));
      return;
    }
    const { items, total, page_size: size } = r.data;
    const pages = Math.max(1, Math.ceil(total / size));
    results.append(h('p', { class: 'count', 'aria-live': 'polite' }, total === 1 ? t('count1') : total ? t('count', { n: total }) : t('none')));
    results.append(h('ul', { class: 'grid' }, items.map((item) => h('li', { class: 'product' },
      h('a', { href: '#/product/' + encodeURIComponent(item.id) }, thumb(item), h('h2', { class: 'pname' }, item.name)),
      h('p', { class: 'price' }, money(item.price_cents)),
      h('p', { class: item.stock > 0 ? 'stock' : 'stock out' }, item.stock > 0 ? t('in_stock', { n: item.stock }) : t('sold_out'))))));
    if (pages > 1) {
      const go = (n) => { catalog.page = n; loadResults(results); };
      results.append(h('nav', { class: 'pager', 'aria-label': t('pages') },
        h('button', { type: 'button', disabled: catalog.page <= 1 || null, onclick: () => go(catalog.page - 1) }, t('prev')),
        h('span', null, t('page_of', { p: catalog.page, n: pages })),
        h('button', { type: 'button', disabled: catalog.page >= pages || null, onclick: () => go(catalog.page + 1) }, t('next'))));
    }
  }

  // ---- product
  async function productView(id) {
    const r = await api('GET', '/api/v1/products/' + encodeURIComponent(id));
    if (!r.ok) {
      show(Mall.message(r.error), h('p', null, h('a', { href: '#/' }, t('back'))));
      return;
    }
    const p = r.data;
    const qty = field({ label: t('quantity'), name: 'quantity', type: 'number', value: 1, attrs: { min: 1, max: Math.max(1, Math.min(999, p.stock)), inputmode: 'numeric' } });
    const f = form({ class: 'buy' }, qty, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', disabled: p.stock > 0 ? null : true }, t('add'))));
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      Mall.clearErrors(f);
      const n = Number(qty.input.value);
      if (!Number.isInteger(n) || n < 1 || n > 999) return Mall.fieldError(f, qty.input, '1–999');
      if (!Mall.loggedIn()) {
        location.hash = '#/login?then=' + encodeURIComponent('#/product/' + p.id);
        return;
      }
      const a = await api('POST', '/api/v1/cart/items', { product_id: p.id, quantity: n }, { auth: true });
      if (!a.ok) return Mall.showErrors(f, a.error);
      f.formErr.textContent = '';
      Mall.notice(t('added', { n, name: p.name }));
    });
    show(p.name,
      h('div', { class: 'detail' }, thumb(p),
        h('div', null,
          h('p', { class: 'price big' }, money(p.price_cents)),
          h('p', { class: p.stock > 0 ? 'stock' : 'stock out' }, p.stock > 0 ? t('in_stock', { n: p.stock }) : t('sold_out')),
          (p.categories || []).length ? h('p', { class: 'cats' }, t('categories') + ': ' + p.categories.join(', ')) : null,
          h('p', { class: 'desc' }, p.description || ''),
          f,
          h('p', null, h('a', { href: '#/cart' }, t('view_cart')), ' · ', h('a', { href: '#/' }, t('back'))))));
  }

  // ---- account
  function loginView(then) {
    show(t('login_title'), Mall.loginForm(() => { location.hash = then || '#/'; }),
      h('p', null, t('no_account') + ' ', h('a', { href: '#/register' }, t('register'))));
  }

  function registerView() {
    const name = field({ label: t('name'), name: 'name', required: true, attrs: { autocomplete: 'name', maxlength: 64 } });
    const email = field({ label: t('email'), name: 'email', type: 'email', required: true, attrs: { autocomplete: 'email' } });
    const password = field({ label: t('password'), name: 'password', type: 'password', required: true, hint: t('password_hint'), attrs: { autocomplete: 'new-password', minlength: 8, maxlength: 128 } });
    const f = form({ class: 'card narrow', 'aria-label': t('register_title') }, name, email, password,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('register'))));
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      Mall.clearErrors(f);
      for (const w of [name, email]) if (!w.input.value.trim()) return Mall.fieldError(f, w.input, t('required'));
      if (password.input.value.length < 8) return Mall.fieldError(f, password.input, t('password_hint'));
      const body = { email: email.input.value.trim(), password: password.input.value, name: name.input.value.trim() };
      const r = await api('POST', '/api/v1/users', body);
      if (!r.ok) return Mall.showErrors(f, r.error);
      const l = await Mall.login(body.email, body.password);
      if (!l.ok) return Mall.showErrors(f, l.error);
      Mall.notice(t('registered', { name: body.name }));
      location.hash = '#/';
    });
    show(t('register_title'), f, h('p', null, t('have_account') + ' ', h('a', { href: '#/login' }, t('login'))));
  }

  function needLogin() {
    show(t('login_title'), h('p', null, t('login_needed')), Mall.loginForm(null),
      h('p', null, t('no_account') + ' ', h('a', { href: '#/register' }, t('register'))));
  }

  // ---- cart
  async function loadCart() {
    const r = await api('POST', '/api/v1/cart', undefined, { auth: true });
    if (!r.ok) return r;
    const ids = r.data.items.map((i) => i.product_id);
    const stock = {};
    if (ids.length) {
      const b = await api('POST', '/api/v1/products/batch', { ids });
      if (b.ok) for (const p of b.data.items) stock[p.id] = p.stock;
    }
    r.stock = stock;
    return r;
  }

  async function cartView(focusId) {
    if (!Mall.loggedIn()) return needLogin();
    const r = await loadCart();
    if (!r.ok) return show(t('cart'), h('p', { class: 'form-err', role: 'alert' }, Mall.message(r.error)));
    const cart = r.data;
    if (!cart.items.length) {
      return show(t('cart'), h('p', null, t('cart_empty')), h('p', null, h('a', { href: '#/' }, t('back'))));
    }
    const problems = h('p', { class: 'form-err', role: 'alert' });
    let blocked = false;
    const lines = cart.items.map((item) => {
      const qtyId = 'qty-' + item.product_id;
      const qty = field({ label: t('quantity'), name: 'quantity', type: 'number', value: item.quantity, attrs: { min: 0, max: 999, inputmode: 'numeric' } });
      qty.input.id = qtyId;
      qty.querySelector('label').setAttribute('for', qtyId);
      qty.err.id = qtyId + '-err';
      qty.input.setAttribute('aria-describedby', qtyId + '-err');
      qty.input.addEventListener('change', async () => {
        const n = Number(qty.input.value);
        if (!Number.isInteger(n) || n < 0 || n > 999) {
          qty.err.textContent = '0–999';
          return;
        }
        const u = await api('PUT', '/api/v1/cart/items/' + encodeURIComponent(item.product_id), { quantity: n }, { auth: true });
        if (!u.ok) {
          qty.err.textContent = Mall.message(u.error);
          return;
        }
        cartView(qtyId);
      });
      const warn = [];
      if (!item.available) {
        warn.push(t('unavailable'));
        blocked = true;
      } else if (r.stock[item.product_id] !== undefined && r.stock[item.product_id] < item.quantity) {
        warn.push(t('only_left', { n: r.stock[item.product_id] }));
        blocked = true;
      }
      return h('li', { class: 'line' },
        h('div', { class: 'lname' }, h('a', { href: '#/product/' + encodeURIComponent(item.product_id) }, item.name),
          h('p', { class: 'unit' }, t('unit') + ': ' + money(item.unit_price_cents)),
          warn.length ? h('p', { class: 'warn' }, warn.join(' ')) : null),
        qty,
        h('p', { class: 'ltotal' }, t('line_total') + ': ' + money(item.line_total_cents)),
        h('button', {
          type: 'button', class: 'link', 'aria-label': t('remove') + ' ' + item.name,
          onclick: async () => {
            const d = await api('DELETE', '/api/v1/cart/items/' + encodeURIComponent(item.product_id), undefined, { auth: true });
            if (!d.ok) problems.textContent = Mall.message(d.error);
            else cartView();
          },
        }, t('remove')));
    });
    show(t('cart'), problems, h('ul', { class: 'lines' }, lines),
      h('p', { class: 'total', 'aria-live': 'polite' }, t('total') + ': ' + money(cart.total_cents)),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', disabled: blocked || null, onclick: () => { location.hash = '#/checkout'; } }, t('checkout')),
        h('a', { href: '#/' }, t('back'))));
    if (focusId) {
      const el = document.getElementById(focusId);
      if (el) el.focus();
    }
  }

  // ---- checkout and paying
  function cardFields() {
    return [
      field({ label: t('card_number'), name: 'number', required: true, attrs: { autocomplete: 'cc-number', inputmode: 'numeric', maxlength: 23 } }),
      field({ label: t('exp_month'), name: 'exp_month', type: 'number', required: true, attrs: { autocomplete: 'cc-exp-month', min: 1, max: 12, inputmode: 'numeric' } }),
      field({ label: t('exp_year'), name: 'exp_year', type: 'number', required: true, attrs: { autocomplete: 'cc-exp-year', min: 2000, max: 9999, inputmode: 'numeric' } }),
      field({ label: t('cvc'), name: 'cvc', required: true, attrs: { autocomplete: 'cc-csc', inputmode: 'numeric', maxlength: 4 } }),
    ];
  }

  function readCard(f, fields) {
    const [number, month, year, cvc] = fields;
    for (const w of fields) if (!w.input.value.trim()) { Mall.fieldError(f, w.input, t('required')); return null; }
    return {
      number: number.input.value.replace(/[\s-]/g, ''),
      exp_month: Number(month.input.value),
      exp_year: Number(year.input.value),
      cvc: cvc.input.value.trim(),
    };
  }

  async function checkoutView() {
    if (!Mall.loggedIn()) return needLogin();
    const r = await loadCart();
    if (!r.ok) return show(t('checkout'), h('p', { class: 'form-err', role: 'alert' }, Mall.message(r.error)));
    if (!r.data.items.length) return show(t('checkout'), h('p', null, t('cart_empty')), h('p', null, h('a', { href: '#/' }, t('back'))));
    const addr = [
      field({ label: t('recipient'), name: 'name', field: 'address.name', required: true, attrs: { autocomplete: 'name' } }),
      field({ label: t('phone'), name: 'phone', field: 'address.phone', type: 'tel', required: true, attrs: { autocomplete: 'tel' } }),
      field({ label: t('line1'), name: 'line1', field: 'address.line1', required: true, wide: true, attrs: { autocomplete: 'address-line1' } }),
      field({ label: t('line2'), name: 'line2', field: 'address.line2', wide: true, hint: t('optional'), attrs: { autocomplete: 'address-line2' } }),
      field({ label: t('city'), name: 'city', field: 'address.city', required: true, attrs: { autocomplete: 'address-level2' } }),
      field({ label: t('postal'), name: 'postal_code', field: 'address.postal_code', required: true, attrs: { autocomplete: 'postal-code' } }),
      field({ label: t('country'), name: 'country', field: 'address.country', required: true, attrs: { autocomplete: 'country-name' } }),
    ];
    const note = field({ label: t('note'), name: 'note', textarea: true, wide: true, hint: t('optional') });
    const card = cardFields();
    const f = form({ class: 'checkout' },
      h('fieldset', null, h('legend', null, t('address')), h('div', { class: 'fields' }, addr, note)),
      h('fieldset', null, h('legend', null, t('card')), h('p', { class: 'hint' }, t('test_cards')), h('div', { class: 'fields' }, card)),
      h('p', { class: 'total' }, t('total') + ': ' + money(r.data.total_cents)),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('pay')), h('a', { href: '#/cart' }, t('view_cart'))));
    let key = null;
    let busy = false;
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (busy) return;
      Mall.clearErrors(f);
      for (const w of addr) if (w.input.required && !w.input.value.trim()) return Mall.fieldError(f, w.input, t('required'));
      const c = readCard(f, card);
      if (!c) return;
      const address = {};
      for (const w of addr) if (w.input.value.trim()) address[w.input.name] = w.input.value.trim();
      const body = { address, card: c };
      if (note.input.value.trim()) body.note = note.input.value.trim();
      key = key || Mall.newKey();
      busy = true;
      const o = await api('POST', '/api/v1/checkout', body, { auth: true, idem: key });
      busy = false;
      if (o.status !== 0) key = null;
      if (!o.ok) return Mall.showErrors(f, o.error);
      const { order, payment } = o.data;
      if (payment && payment.status === 'succeeded') {
        Mall.notice(t('paid_ok', { id: shortId(order.id) }));
        location.hash = '#/orders/' + order.id;
      } else {
        location.hash = '#/orders/' + order.id + '/declined';
      }
    });
    show(t('checkout'), f);
  }

  // ---- orders
  function statusText(o) {
    const s = t('st_' + o.status);
    return o.status === 'cancelled' && o.cancel_reason ? s + ' (' + t('why_' + o.cancel_reason) + ')' : s;
  }

  function left(expires) {
    const ms = new Date(expires).getTime() - Date.now();
    if (!(ms > 0)) return '0:00';
    const s = Math.ceil(ms / 1000);
    const hh = Math.floor(s / 3600);
    const mm = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, '0');
    return hh ? hh + ':' + String(mm).padStart(2, '0') + ':' + ss : mm + ':' + ss;
  }

  function orderCard(o, opts) {
    const box = h('article', { class: 'order card', 'data-order': o.id, 'aria-label': t('order', { id: shortId(o.id) }) });
    const render = (order, o2) => {
      clear(box);
      const pending = order.status === 'pending_payment';
      box.append(
        h('h2', null, t('order', { id: shortId(order.id) })),
        h('p', { class: 'status st-' + order.status }, statusText(order)),
        h('p', { class: 'when' }, t('placed', { when: when(order.created_at) })),
        h('ul', { class: 'items' }, order.items.map((i) => h('li', null, i.quantity + ' × ' + i.name + ' — ' + money(i.line_total_cents)))),
        h('p', { class: 'total' }, t('total') + ': ' + money(order.total_cents)));
      if (!pending) return;
      const countdown = h('span', { class: 'left', 'data-deadline': order.expires_at, 'data-order': order.id }, left(order.expires_at));
      box.append(h('p', { class: 'countdown' }, t('time_left') + ': ', countdown));
      const card = cardFields();
      const f = form({ class: 'pay' }, h('div', { class: 'fields' }, card),
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('pay'))));
      if (o2 && o2.declined) f.formErr.textContent = t('declined');
      let key = null;
      f.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        Mall.clearErrors(f);
        const c = readCard(f, card);
        if (!c) return;
        key = key || Mall.newKey();
        const s = await api('POST', '/api/v1/payments', { order_id: order.id }, { auth: true, idem: key + '-open' });
        if (!s.ok) {
          if (s.status !== 0) key = null;
          return Mall.showErrors(f, s.error);
        }
        const c2 = await api('POST', '/api/v1/payments/' + encodeURIComponent(s.data.id) + '/confirm', c, { auth: true, idem: key + '-pay' });
        if (c2.status !== 0) key = null;
        if (!c2.ok) {
          if (c2.error.code === 'invalid_state') refreshOrder(order.id, render);
          return Mall.showErrors(f, c2.error);
        }
        Mall.notice(t('paid_ok', { id: shortId(order.id) }));
        refreshOrder(order.id, render);
      });
      const cancel = h('button', {
        type: 'button', class: 'danger',
        onclick: async () => {
          const c = await api('POST', '/api/v1/orders/' + encodeURIComponent(order.id) + '/cancel', undefined, { auth: true });
          if (!c.ok) {
            f.formErr.textContent = Mall.message(c.error);
            if (c.error.code === 'invalid_state') refreshOrder(order.id, render);
            return;
          }
          Mall.notice(t('cancelled_ok', { id: shortId(order.id) }));
          render(c.data);
        },
      }, t('cancel_order'));
      box.append(f, h('div', { class: 'actions' }, cancel));
    };
    box.rerender = (order) => render(order);
    render(o, opts);
    return box;
  }

  async function refreshOrder(id, render) {
    const r = await api('GET', '/api/v1/orders/' + encodeURIComponent(id), undefined, { auth: true });
    if (r.ok) render(r.data);
    return r;
  }

  async function ordersView(focus, declined) {
    if (!Mall.loggedIn()) return needLogin();
    const r = await api('GET', '/api/v1/orders?page_size=20', undefined, { auth: true });
    if (!r.ok) return show(t('orders'), h('p', { class: 'form-err', role: 'alert' }, Mall.message(r.error)));
    const items = r.data.items.slice();
    if (focus && !items.some((o) => o.id === focus)) {
      const one = await api('GET', '/api/v1/orders/' + encodeURIComponent(focus), undefined, { auth: true });
      if (one.ok) items.unshift(one.data);
    }
    if (!items.length) return show(t('orders'), h('p', null, t('no_orders')), h('p', null, h('a', { href: '#/' }, t('back'))));
    const cards = items.map((o) => orderCard(o, { declined: declined && o.id === focus }));
    show(t('orders'), h('div', { class: 'orders' }, cards));
    if (declined) Mall.alertBox('');
    const target = focus && cards.find((c) => c.getAttribute('data-order') === focus);
    if (target) {
      target.scrollIntoView();
      const first = target.querySelector('input');
      if (first && declined) first.focus();
    }
    // The countdowns, and a deadline that passes: ask until the server says what became of it.
    const checking = new Set();
    const timer = setInterval(() => {
      for (const el of document.querySelectorAll('[data-deadline]')) {
        el.textContent = left(el.getAttribute('data-deadline'));
        const id = el.getAttribute('data-order');
        if (new Date(el.getAttribute('data-deadline')).getTime() <= Date.now() && !checking.has(id)) {
          checking.add(id);
          el.textContent = t('expiring');
          const card = cards.find((c) => c.getAttribute('data-order') === id);
          (async () => {
            for (let i = 0; i < 30; i += 1) {
              const o = await api('GET', '/api/v1/orders/' + encodeURIComponent(id), undefined, { auth: true });
              if (!o.ok || o.data.status !== 'pending_payment') {
                if (o.ok && card) card.rerender(o.data);
                break;
              }
              await new Promise((res) => { setTimeout(res, 1000); });
            }
            checking.delete(id);
          })();
        }
      }
    }, 1000);
    cleanup.push(() => clearInterval(timer));
  }

  // ---- routing
  async function route() {
    for (const f of cleanup) f();
    cleanup = [];
    const hash = location.hash || '#/';
    const [path, qs] = hash.slice(1).split('?');
    const parts = path.split('/').filter(Boolean);
    if (parts[0] === 'product' && parts[1]) return productView(decodeURIComponent(parts[1]));
    if (parts[0] === 'login') return loginView(new URLSearchParams(qs || '').get('then'));
    if (parts[0] === 'register') return registerView();
    if (parts[0] === 'cart') return cartView();
    if (parts[0] === 'checkout') return checkoutView();
    if (parts[0] === 'orders') return ordersView(parts[1], parts[2] === 'declined');
    return catalogView();
  }

  Mall.pages.shop = {
    start() {
      window.addEventListener('hashchange', () => {
        route();
        document.getElementById('main').focus({ preventScroll: true });
      });
      // Views that need a session are drawn again when it starts or ends.
      Mall.onSession(() => {
        if (/^#\/(cart|checkout|orders)/.test(location.hash)) route();
      });
      route();
    },
  };
})();
