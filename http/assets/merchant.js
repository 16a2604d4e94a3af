// The merchant console at `/merchant`: the signed-in merchant's own products, created, edited
// (name, description, price, stock, categories, image URL) and deleted through the public API;
// the API's complaints are shown next to the field they name.
'use strict';

(() => {
  const { t, h, clear, field, form, api, money } = Mall;

  Mall.words({
    en: {
      m_title: 'Your products', m_new: 'New product', m_name: 'Product name', m_desc: 'Description',
      m_price: 'Price', m_price_hint: 'In yuan, e.g. 12.50', m_stock: 'Stock', m_cats: 'Categories',
      m_cats_hint: 'Separated by commas', m_image: 'Image URL', m_image_hint: 'A path on this site, e.g. /assets/icon.svg',
      m_create: 'Create product', m_save: 'Save', m_delete: 'Delete', m_confirm: 'Really delete?',
      m_created: 'Product “{name}” created.', m_saved: 'Product “{name}” saved.', m_deleted: 'Product “{name}” deleted.',
      m_none: 'You have no products yet.', m_not_merchant: 'This account cannot sell: an admin must give it the merchant role.',
      m_bad_price: 'Enter a price in yuan, like 12.50', m_bad_stock: 'Enter a whole number of items', m_edit: 'Edit {name}',
      m_login: 'Log in with a merchant account.',
    },
    zh: {
      m_title: '我的商品', m_new: '新商品', m_name: '商品名称', m_desc: '描述',
      m_price: '价格', m_price_hint: '单位：元，例如 12.50', m_stock: '库存', m_cats: '分类',
      m_cats_hint: '用逗号分隔', m_image: '图片网址', m_image_hint: '本站的路径，例如 /assets/icon.svg',
      m_create: '创建商品', m_save: '保存', m_delete: '删除', m_confirm: '确认删除？',
      m_created: '已创建商品「{name}」。', m_saved: '已保存商品「{name}」。', m_deleted: '已删除商品「{name}」。',
      m_none: '您还没有商品。', m_not_merchant: '此账户不能销售商品：需要管理员授予商家角色。',
      m_bad_price: '请输入以元为单位的价格，例如 12.50', m_bad_stock: '请输入整数', m_edit: '编辑 {name}',
      m_login: '请使用商家账户登录。',
    },
  });

  const main = () => document.getElementById('main');

  /** The product form's fields, filled from `p` when editing. */
  function productFields(p) {
    return {
      name: field({ label: t('m_name'), name: 'name', required: true, value: p ? p.name : '', attrs: { maxlength: 200 } }),
      description: field({ label: t('m_desc'), name: 'description', textarea: true, wide: true, value: p ? p.description : '' }),
      price: field({ label: t('m_price'), name: 'price', field: 'price_cents', required: true, hint: t('m_price_hint'), value: p ? Mall.yuan(p.price_cents) : '', attrs: { inputmode: 'decimal' } }),
      stock: field({ label: t('m_stock'), name: 'stock', type: 'number', required: true, value: p ? p.stock : '', attrs: { min: 0, inputmode: 'numeric' } }),
      categories: field({ label: t('m_cats'), name: 'categories', hint: t('m_cats_hint'), value: p ? (p.categories || []).join(', ') : '' }),
      image: field({ label: t('m_image'), name: 'image_url', hint: t('m_image_hint'), value: p && p.image_url ? p.image_url : '', wide: true }),
    };
  }

  /** The body for the API, or null after pointing at the field that is wrong. */
  function read(f, w, editing) {
    Mall.clearErrors(f);
    if (!w.name.input.value.trim()) return Mall.fieldError(f, w.name.input, t('required')), null;
    const price = Mall.parseYuan(w.price.input.value);
    if (price === null) return Mall.fieldError(f, w.price.input, t('m_bad_price')), null;
    const stockText = String(w.stock.input.value).trim();
    if (!/^\d{1,10}$/.test(stockText)) return Mall.fieldError(f, w.stock.input, t('m_bad_stock')), null;
    const cats = w.categories.input.value.split(/[,，]/).map((c) => c.trim()).filter(Boolean);
    const body = {
      name: w.name.input.value.trim(),
      description: w.description.input.value,
      price_cents: price,
      stock: Number(stockText),
      categories: cats,
    };
    const img = w.image.input.value.trim();
    if (img) body.image_url = img;
    else if (editing) body.image_url = null;
    return body;
  }

  function productEditor(p, reload) {
    const w = productFields(p);
    const f = form({ class: 'edit' }, h('div', { class: 'fields' }, Object.values(w)));
    const del = h('button', { type: 'button', class: 'danger' }, t('m_delete'));
    let armed = false;
    del.addEventListener('click', async () => {
      if (!armed) {
        armed = true;
        del.textContent = t('m_confirm');
        return;
      }
      const r = await api('DELETE', '/api/v1/products/' + encodeURIComponent(p.id), undefined, { auth: true });
      if (!r.ok) return Mall.showErrors(f, r.error);
      Mall.notice(t('m_deleted', { name: p.name }));
      reload();
    });
    f.append(h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('m_save')), del));
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = read(f, w, true);
      if (!body) return;
      const r = await api('PATCH', '/api/v1/products/' + encodeURIComponent(p.id), body, { auth: true });
      if (!r.ok) return Mall.showErrors(f, r.error);
      Mall.notice(t('m_saved', { name: r.data.name }));
      reload();
    });
    return h('article', { class: 'card mproduct', 'data-product': p.id, 'aria-label': t('m_edit', { name: p.name }) },
      h('h3', null, p.name), h('p', { class: 'price' }, money(p.price_cents) + ' · ' + t('m_stock') + ' ' + p.stock), f);
  }

  /** The caller's products: the catalog, read page by page, kept to those the caller sells. */
  async function mine() {
    const me = Mall.user();
    const out = [];
    for (let page = 1; page <= 50; page += 1) {
      const r = await api('GET', '/api/v1/products?sort=newest&page_size=100&page=' + page);
      if (!r.ok) return r;
      for (const p of r.data.items) if (me && p.merchant_id === me.id) out.push(p);
      if (page * r.data.page_size >= r.data.total) break;
    }
    return { ok: true, data: out };
  }

  async function render() {
    const m = clear(main());
    if (!Mall.loggedIn()) {
      m.append(h('h1', null, t('title_merchant')), h('p', null, t('m_login')), Mall.loginForm(null));
      return;
    }
    if (!Mall.user()) await Mall.loadMe();
    if (!(Mall.hasRole('merchant') || Mall.hasRole('admin'))) {
      m.append(h('h1', null, t('title_merchant')), h('p', { class: 'form-err', role: 'alert' }, t('m_not_merchant')));
      return;
    }
    const w = productFields(null);
    const f = form({ class: 'card create', 'aria-label': t('m_new') }, h('h2', null, t('m_new')), h('div', { class: 'fields' }, Object.values(w)),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('m_create'))));
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = read(f, w, false);
      if (!body) return;
      const r = await api('POST', '/api/v1/products', body, { auth: true });
      if (!r.ok) return Mall.showErrors(f, r.error);
      Mall.notice(t('m_created', { name: r.data.name }));
      render();
    });
    const list = h('div', { class: 'mlist' }, h('p', null, t('loading')));
    m.append(h('h1', null, t('m_title')), f, h('h2', null, t('m_title')), list);
    const r = await mine();
    clear(list);
    if (!r.ok) list.append(h('p', { class: 'form-err', role: 'alert' }, Mall.message(r.error)));
    else if (!r.data.length) list.append(h('p', null, t('m_none')));
    else for (const p of r.data) list.append(productEditor(p, render));
  }

  Mall.pages.merchant = {
    start() {
      Mall.onSession(() => { render(); });
      render();
    },
  };
})();
