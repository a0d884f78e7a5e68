-- 0008: tenants bound to peers (--tenant-auth=peer).
--
-- A grant lets the peers with a uid, or in a group (primary or
-- supplementary gid), name a tenant in x-tenant-id. Like tenants, grants
-- are not tenant-owned rows: Admin manages them (from the server's own uid
-- or root), and the server reads them all into memory
-- (src/services/tenant_auth.c), so the check costs no database work.

CREATE TABLE tenant_grants (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Constraints named after the request field: a violation answers
    -- naming it (src/services/svc_table.h).
    tenant_id  text NOT NULL CONSTRAINT tenant_id REFERENCES tenants (id) ON DELETE CASCADE,
    uid        bigint CONSTRAINT uid CHECK (uid BETWEEN 0 AND 4294967294),
    gid        bigint CONSTRAINT gid CHECK (gid BETWEEN 0 AND 4294967294),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_grants_one_principal CHECK (num_nonnulls(uid, gid) = 1),
    -- One row per (tenant, uid) and per (tenant, gid): the NULL of the
    -- other column counts as equal.
    CONSTRAINT tenant_grants_unique UNIQUE NULLS NOT DISTINCT (tenant_id, uid, gid)
);

-- UPDATE of tenant_id only: GrantTenant's ON CONFLICT DO UPDATE (a no-op
-- that returns the existing grant) needs it.
CALL arbiter_grant_app('SELECT, INSERT, DELETE, UPDATE (tenant_id)', 'TABLE tenant_grants');

-- RevokeTenant's guard: exactly one of uid and gid, answered as the
-- table's CHECK answers a GrantTenant (the same constraint name, so the
-- same message).
CREATE FUNCTION tenant_grant_principal(uid bigint, gid bigint) RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF num_nonnulls(uid, gid) <> 1 THEN
        RAISE EXCEPTION 'exactly one of uid and gid must be set'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'tenant_grants_one_principal';
    END IF;
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION tenant_grant_principal(bigint, bigint) FROM PUBLIC;
CALL arbiter_grant_app('EXECUTE', 'FUNCTION tenant_grant_principal(bigint, bigint)');
