DROP TABLE cart_lines;
DROP TABLE carts;
DROP TABLE product_categories;
DROP TABLE products;
