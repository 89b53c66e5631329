-- The shop: three upstream systems, each on its own clock.
CREATE SOURCE search;
CREATE SOURCE pricing;
CREATE SOURCE inventory;

CREATE TABLE listings (
  listing_id VARCHAR PRIMARY KEY,
  product_id VARCHAR,
  title      VARCHAR,
  category   VARCHAR,
  active     BOOLEAN
) SOURCE search;

CREATE TABLE prices (
  product_id VARCHAR PRIMARY KEY,
  price      DOUBLE,
  currency   VARCHAR
) SOURCE pricing;

CREATE TABLE stock (
  product_id VARCHAR,
  warehouse  VARCHAR,
  qty        BIGINT,
  PRIMARY KEY (product_id, warehouse)
) SOURCE inventory;

-- The search index's document: listing + price, precomputed once per epoch.
CREATE VIEW listing_docs AS
  SELECT l.listing_id, l.title, l.category, p.price
  FROM listings l LEFT JOIN prices p ON l.product_id = p.product_id
  WHERE l.active;
