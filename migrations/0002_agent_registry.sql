-- 0002_agent_registry: the agent registry (upstream migrations 001 and 009,
-- UPSTREAM.md §3), tenant-scoped with forced row-level security.
--
-- Every table carries tenant_id, defaulted from the transaction-local
-- setting app.current_tenant that the pool sets for each call, so handlers
-- never pass it. Children reference their agent through the composite key
-- (tenant_id, agent_id): a child row can never point at another tenant's
-- agent, and deleting an agent cascades to everything that belongs to it.
-- One id type everywhere: uuid from gen_random_uuid() (built in since PG13).
--
-- Upstream defects fixed here (UPSTREAM.md §7): FORCE RLS plus WITH CHECK
-- on every table (the owner does not bypass it, a write for another tenant
-- fails with 42501), one id type, the missing current_load table is part of
-- the schema, capacity is a column instead of a hard-coded 10, and numbers
-- are double precision so that running averages are exact to the bit.

CREATE TABLE agents (
    tenant_id      text NOT NULL
                   DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                   REFERENCES tenants (id),
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    name           text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
    model_family   text NOT NULL DEFAULT '' CHECK (char_length(model_family) <= 255),
    registered_at  timestamptz NOT NULL DEFAULT now(),
    last_active_at timestamptz NOT NULL DEFAULT now(),
    -- Ids are scoped to the tenant: the same uuid in another tenant is
    -- another agent, so a caller-chosen id never reveals (through a unique
    -- violation) that another tenant already uses it.
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- ListAgents: newest last_active_at first, id as tie-break, keyset paging
-- with (last_active_at, id) < ($ts, $id). With 10,000 agents in 10 tenants
-- EXPLAIN shows "Index Scan Backward using agents_active_idx" with both
-- the tenant and the row comparison as index conditions and no sort; the
-- (tenant_id, last_active_at) prefix also serves CleanupStaleAgents.
CREATE INDEX agents_active_idx ON agents (tenant_id, last_active_at, id);

-- One row per (kind, value); ord keeps the order the caller gave.
CREATE TABLE agent_capabilities (
    tenant_id text NOT NULL
              DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
              REFERENCES tenants (id),
    agent_id  uuid NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('task_type', 'language', 'specialization')),
    value     text NOT NULL CHECK (char_length(value) BETWEEN 1 AND 255),
    ord       integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, agent_id, kind, value),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

-- QueryAgentsByCapability: "agents of this tenant with capability
-- (kind, value)". EXPLAIN on 10,000 agents: the task_type EXISTS becomes a
-- join driven by a bitmap scan of agent_capabilities_lookup_idx (51 of 1000
-- rows), the language EXISTS a semi-join on the primary key.
-- (The primary key serves reading an agent's capabilities and the FK.)
CREATE INDEX agent_capabilities_lookup_idx
    ON agent_capabilities (tenant_id, kind, value, agent_id);

CREATE TABLE agent_performance (
    tenant_id          text NOT NULL
                       DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
              REFERENCES tenants (id),
    agent_id           uuid NOT NULL,
    success_rate       double precision NOT NULL DEFAULT 0.8
                       CHECK (success_rate BETWEEN 0 AND 1),
    average_quality    double precision NOT NULL DEFAULT 0.7
                       CHECK (average_quality BETWEEN 0 AND 1),
    average_latency_ms double precision NOT NULL DEFAULT 5000
                       CHECK (average_latency_ms >= 0),
    task_count         bigint NOT NULL DEFAULT 0 CHECK (task_count >= 0),
    PRIMARY KEY (tenant_id, agent_id),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE agent_performance_events (
    tenant_id     text NOT NULL
                  DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
              REFERENCES tenants (id),
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    agent_id      uuid NOT NULL,
    task_id       text NOT NULL DEFAULT '' CHECK (char_length(task_id) <= 255),
    task_type     text NOT NULL DEFAULT '' CHECK (char_length(task_type) <= 255),
    success       boolean NOT NULL,
    quality_score double precision NOT NULL CHECK (quality_score BETWEEN 0 AND 1),
    latency_ms    double precision NOT NULL CHECK (latency_ms >= 0),
    tokens_used   bigint NOT NULL DEFAULT 0 CHECK (tokens_used >= 0),
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

-- An agent's history in time order; also the index the cascading delete
-- of an agent needs.
CREATE INDEX agent_performance_events_agent_idx
    ON agent_performance_events (tenant_id, agent_id, recorded_at);

CREATE TABLE agent_load (
    tenant_id    text NOT NULL
                 DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
              REFERENCES tenants (id),
    agent_id     uuid NOT NULL,
    active_tasks integer NOT NULL DEFAULT 0 CHECK (active_tasks >= 0),
    queued_tasks integer NOT NULL DEFAULT 0 CHECK (queued_tasks >= 0),
    capacity     integer NOT NULL DEFAULT 10 CHECK (capacity > 0),
    -- min(100, active * 100 / capacity), always consistent with the counts.
    utilization_percent double precision NOT NULL
        GENERATED ALWAYS AS (LEAST(100.0, active_tasks * 100.0 / capacity)) STORED,
    PRIMARY KEY (tenant_id, agent_id),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

-- Forced row-level security: one policy per table, the same expression for
-- reading (USING) and writing (WITH CHECK). The (SELECT ...) makes the
-- setting an initPlan evaluated once per statement; NULLIF turns the ''
-- that a reverted setting leaves behind into NULL, which matches nothing.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['agents', 'agent_capabilities', 'agent_performance',
                             'agent_performance_events', 'agent_load'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = (SELECT NULLIF(current_setting('app.current_tenant', true), '')))
            WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.current_tenant', true), '')))$p$,
            t);
    END LOOP;
END
$$;

-- One agent as every handler returns it. security_invoker makes the view
-- run with the caller's rights, so the policies above apply through it
-- (a plain view would run as its owner).
CREATE VIEW agent_view WITH (security_invoker = true) AS
SELECT a.tenant_id, a.id, a.name, a.model_family,
       c.task_types, c.languages, c.specializations,
       p.success_rate, p.average_quality, p.average_latency_ms, p.task_count,
       l.active_tasks, l.queued_tasks, l.utilization_percent, l.capacity,
       a.registered_at, a.last_active_at
FROM agents a
JOIN agent_performance p ON p.tenant_id = a.tenant_id AND p.agent_id = a.id
JOIN agent_load l ON l.tenant_id = a.tenant_id AND l.agent_id = a.id
CROSS JOIN LATERAL (
    SELECT COALESCE(array_agg(ac.value ORDER BY ac.ord) FILTER (WHERE ac.kind = 'task_type'),
                    '{}') AS task_types,
           COALESCE(array_agg(ac.value ORDER BY ac.ord) FILTER (WHERE ac.kind = 'language'),
                    '{}') AS languages,
           COALESCE(array_agg(ac.value ORDER BY ac.ord) FILTER (WHERE ac.kind = 'specialization'),
                    '{}') AS specializations
    FROM agent_capabilities ac
    WHERE ac.tenant_id = a.tenant_id AND ac.agent_id = a.id
) c;

-- The server's rights: rows only (no DDL, no TRUNCATE); the view for reads.
CALL arbiter_grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE agents');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE agent_capabilities');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE agent_performance');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE agent_performance_events');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE agent_load');
CALL arbiter_grant_app('SELECT', 'TABLE agent_view');
