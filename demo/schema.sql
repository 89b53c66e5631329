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
