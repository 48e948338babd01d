-- Run once by the postgres container of infra/compose.yaml when its data volume is new:
-- the Prefect server's own database, with the pg_trgm extension its migrations need.
CREATE DATABASE prefect OWNER qor;
\connect prefect
CREATE EXTENSION IF NOT EXISTS pg_trgm;
