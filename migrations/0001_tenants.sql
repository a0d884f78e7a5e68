-- 0001: tenants, and the grant helper every later migration uses.
--
-- Runs as the owner role through `arbiterd migrate`, which sets the session
-- setting arbiter.app_role to --app-role (default arbiter_app) before
-- applying files. The server connects as that app role: it owns nothing and
-- gets exactly the privileges granted here and in later files.

-- Who the app role is for this run (defaults to arbiter_app when a file is
-- applied by hand, e.g. with psql).
CREATE FUNCTION arbiter_app_role() RETURNS name
LANGUAGE sql STABLE
AS $$ SELECT coalesce(nullif(current_setting('arbiter.app_role', true), ''), 'arbiter_app')::name $$;

-- Grants |privileges| (e.g. 'SELECT, INSERT') on |object| (e.g.
-- 'TABLE agents', 'SEQUENCE agents_seq_seq', 'FUNCTION f(int)') to the app
-- role. Every migration grants explicitly with it; there are no default
-- privileges, so a table nobody granted stays invisible to the server.
CREATE PROCEDURE arbiter_grant_app(privileges text, object text)
LANGUAGE plpgsql
AS $$
DECLARE
    role name := arbiter_app_role();
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) THEN
        RAISE EXCEPTION 'app role "%" does not exist', role
            USING HINT = format('create it first: CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS', role);
    END IF;
    EXECUTE format('GRANT %s ON %s TO %I', privileges, object, role);
END
$$;
REVOKE ALL ON FUNCTION arbiter_app_role() FROM PUBLIC;
REVOKE ALL ON PROCEDURE arbiter_grant_app(text, text) FROM PUBLIC;

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', arbiter_app_role());
END
$$;

-- Tenants are not tenant-owned rows: they are managed by Admin (from the
-- server's own uid) and referenced by every tenant-owned table.
CREATE TABLE tenants (
    id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CALL arbiter_grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE tenants');
